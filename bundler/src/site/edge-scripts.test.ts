import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EDGE_SCRIPTS_DIR, loadEdgeScripts } from './edge-scripts.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-scripts-'));
  dirs.push(dir);
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe('loadEdgeScripts', () => {
  it('should take every file in name order and leave out dot-files and dot-folders with all they hold', () => {
    const dir = tree({
      install: '#!/bin/sh\n',
      'lib/common.sh': 'common\n',
      'lib/b/deep.sh': 'deep\n',
      'lib/.common.sh.swp': 'editor swap',
      '.DS_Store': 'finder',
      '.git/config': '[core]',
      '.cache/lib/x.sh': 'cached',
      'lib/.hidden/inside.sh': 'hidden',
      VERSION: '1\n',
    });
    symlinkSync(path.join(dir, 'install'), path.join(dir, 'install-link'));
    const scripts = loadEdgeScripts(dir);
    expect(scripts.map((s) => s.path)).toEqual([
      'VERSION',
      'install',
      'install-link',
      'lib/b/deep.sh',
      'lib/common.sh',
    ]);
    expect(scripts.find((s) => s.path === 'lib/b/deep.sh')!.content.toString()).toBe('deep\n');
    expect(scripts.find((s) => s.path === 'install-link')!.content.toString()).toBe('#!/bin/sh\n');
  });

  it("should load the repository's edge scripts by default", () => {
    const scripts = loadEdgeScripts();
    expect(EDGE_SCRIPTS_DIR.endsWith(`${path.sep}edge-scripts`)).toBe(true);
    expect(scripts.map((s) => s.path)).toContain('install');
    expect(scripts.map((s) => s.path)).toContain('lib/receipt-code.sh');
    expect(scripts.some((s) => s.path.split('/').some((part) => part.startsWith('.')))).toBe(false);
  });

  it('should throw when the folder cannot be read', () => {
    expect(() => loadEdgeScripts(path.join(os.tmpdir(), 'outpost-no-such-folder'))).toThrow(/ENOENT/);
  });
});
