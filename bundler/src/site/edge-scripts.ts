import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { SitePartScript } from './site-part.ts';

/** The repository's edge-scripts/ folder: what every bundle carries as `scripts/` unless told otherwise. */
export const EDGE_SCRIPTS_DIR = path.resolve(import.meta.dirname, '../../../edge-scripts');

/**
 * Every file under `dir`, as the bundle's `scripts/` folder, in name order (byte order of the
 * names, folder by folder), so the same folder always makes the same bundle.
 *
 * The one rule: anything whose name starts with a dot is left out — dot-files (`.DS_Store`, an
 * editor's `.swp`) and dot-folders with everything under them (`.git`, `.cache`): they are never
 * part of the scripts, and a site should not receive them. Symbolic links are followed.
 *
 * Read synchronously: the folder is a few dozen small files, read once when a build runner or the
 * CLI starts. Throws the file system's error when `dir` cannot be read.
 *
 * @example
 * const scripts = loadEdgeScripts(); // [{ path: 'install', content: <Buffer …> }, { path: 'lib/common.sh', … }, …]
 */
export function loadEdgeScripts(dir: string = EDGE_SCRIPTS_DIR): SitePartScript[] {
  const out: SitePartScript[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      if (name.startsWith('.')) continue;
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, relPath);
      const stat = statSync(full);
      if (stat.isDirectory()) walk(relPath);
      else if (stat.isFile()) out.push({ path: relPath, content: readFileSync(full) });
    }
  };
  walk('');
  return out;
}
