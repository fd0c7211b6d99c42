// What commit finds where its new container goes: only an interrupted commit's own leftover is ever removed.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { commitTarget } from '../../../src/commands/commit.js';

test("a directory is a leftover only with commit's marker (a file) and no config; anything else is taken", () => {
  const top = mkdtempSync(join(tmpdir(), 'thin-lxc-commit-'));
  try {
    const at = (name: string, files: Record<string, string | null>) => {
      const dir = join(top, name);
      mkdirSync(dir);
      for (const [file, content] of Object.entries(files)) {
        if (content === null) mkdirSync(join(dir, file));
        else writeFileSync(join(dir, file), content);
      }
      return dir;
    };
    assert.is(commitTarget(join(top, 'none')), 'free');
    assert.is(commitTarget(at('interrupted', { '.thin-lxc-commit': 'left', rootfs: null })), 'leftover');
    assert.is(commitTarget(at('finished', { '.thin-lxc-commit': 'left', config: 'lxc.uts.name = x\n' })), 'taken');
    assert.is(commitTarget(at('someone', { rootfs: null })), 'taken');
    assert.is(commitTarget(at('marker-dir', { '.thin-lxc-commit': null })), 'taken');
    const linked = at('linked', {});
    symlinkSync('/etc/hostname', join(linked, '.thin-lxc-commit'));
    assert.is(commitTarget(linked), 'taken', 'a symlink is no marker');
    symlinkSync(join(top, 'interrupted'), join(top, 'via-link'));
    assert.is(commitTarget(join(top, 'via-link')), 'taken', 'a symlink to a leftover is not removed');
    writeFileSync(join(top, 'file'), '');
    assert.is(commitTarget(join(top, 'file')), 'taken');
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});

test.run();
