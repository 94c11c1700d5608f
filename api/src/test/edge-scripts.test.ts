import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve(import.meta.dirname, '../../../edge-scripts');

function shellScripts(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return shellScripts(p);
    return e.name.endsWith('.sh') || fs.readFileSync(p, 'utf8').startsWith('#!/bin/sh') ? [p] : [];
  });
}

describe('edge scripts', () => {
  it('should be POSIX sh that shellcheck passes (they run under dash and busybox at the sites)', () => {
    const scripts = shellScripts(DIR);
    expect(scripts.length).toBeGreaterThan(0);
    // Each file on its own (-x, following the `. lib/outpost.sh` lines, is several times slower); the
    // few places that read what the library sets say so with a directive.
    const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', ...scripts], { encoding: 'utf8' });
    expect(
      r.error,
      'shellcheck is missing: apt-get install -y shellcheck (scripts/ensure-prereqs.sh does this)',
    ).toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 180_000);
});
