// Removing trees without crossing a mount: the mount table as the kernel writes it, and real trees in /tmp.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UserError } from '../../../src/core/errors.js';
import { mountPointsUnder, parseMountPoints, removeTreeOnDevice, settleStaged, stageFiles } from '../../../src/core/files.js';

test('mount points are field 5 of mountinfo, with octal escapes decoded', () => {
  const mountinfo = [
    '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '98 22 254:1 /tmp/src /srv/my\\040data\\134x rw,relatime shared:1 - ext4 /dev/vda rw',
    '',
  ].join('\n');
  assert.equal(parseMountPoints(mountinfo), ['/', '/srv/my data\\x']);
});

test('staged files: nothing changes until commit; a write that fails removes what was staged; discard leaves the files as they were', () => {
  const dir = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    writeFileSync(join(dir, 'config'), 'old config');
    writeFileSync(join(dir, 'state'), 'old state');
    const files = stageFiles([
      { path: join(dir, 'config'), content: 'new config', mode: 0o644 },
      { path: join(dir, 'state'), content: 'new state', mode: 0o644 },
    ]);
    assert.is(readFileSync(join(dir, 'config'), 'utf8'), 'old config');
    files.commit();
    assert.equal([readFileSync(join(dir, 'config'), 'utf8'), readFileSync(join(dir, 'state'), 'utf8')], ['new config', 'new state']);
    // The second write fails (its folder is missing), as a write on a full disk would: the first one's file goes too.
    assert.throws(() => stageFiles([
      { path: join(dir, 'config'), content: 'newer', mode: 0o644 },
      { path: join(dir, 'missing', 'state'), content: 'newer', mode: 0o644 },
    ]));
    assert.equal(readdirSync(dir).sort(), ['config', 'state']);
    stageFiles([{ path: join(dir, 'config'), content: 'dropped', mode: 0o644 }]).discard();
    assert.equal(readdirSync(dir).sort(), ['config', 'state']);
    assert.is(readFileSync(join(dir, 'config'), 'utf8'), 'new config');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('settling a killed writer\'s staged files: past its first rename it is finished, before it undone; live writers\' and other tags\' are left', () => {
  const dir = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    mkdirSync(join(dir, 'image'));
    const [config, state] = [join(dir, 'image', 'config'), join(dir, 'state')];
    writeFileSync(config, 'new config'); // the killed writer's, renamed into place
    writeFileSync(state, 'old state');
    // PIDs above the kernel's pid_max (4194304) are never alive: killed writers'. This test's own pid is alive.
    writeFileSync(join(dir, '.state.update-99999999'), 'new state'); // killed between its two renames
    writeFileSync(join(dir, 'image', '.config.update-99999998'), 'other config'); // killed before them
    writeFileSync(join(dir, '.state.update-99999998'), 'other state');
    writeFileSync(join(dir, 'image', '.config.update-99999997'), 'half'); // killed while staging
    writeFileSync(join(dir, 'image', `.config.update-${process.pid}`), 'live config'); // still at work
    writeFileSync(join(dir, `.state.update-${process.pid}`), 'live state');
    writeFileSync(join(dir, '.state.tmp-99999996'), 'another writer\'s');
    settleStaged([config, state], 'update');
    assert.equal([readFileSync(config, 'utf8'), readFileSync(state, 'utf8')], ['new config', 'new state']);
    assert.equal(readdirSync(dir).sort(), ['.state.tmp-99999996', `.state.update-${process.pid}`, 'image', 'state']);
    assert.equal(readdirSync(join(dir, 'image')).sort(), [`.config.update-${process.pid}`, 'config']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tree without mounts is removed whole; a symlink in it is unlinked, never followed', () => {
  const outside = mkdtempSync('/tmp/thin-lxc-unit-');
  const tree = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    writeFileSync(join(outside, 'keep'), 'x');
    mkdirSync(join(tree, 'a/b'), { recursive: true });
    writeFileSync(join(tree, 'a/b/file'), 'y');
    symlinkSync(outside, join(tree, 'a/link'));
    assert.equal(mountPointsUnder(tree), []);
    removeTreeOnDevice(tree, 'a test tree');
    assert.not.ok(existsSync(tree));
    assert.ok(existsSync(join(outside, 'keep')), 'what the symlink pointed at is untouched');
    removeTreeOnDevice(tree, 'a test tree'); // gone already: quiet
  } finally {
    rmSync(outside, { recursive: true, force: true });
    rmSync(tree, { recursive: true, force: true });
  }
});

test('a tree nested deeper than the walk goes is refused in one line, naming it and how to remove it', () => {
  const tree = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    // 10,000 folders deep, made through open directories as a container's root could make them: no path is that long.
    let fd = openSync(tree, constants.O_RDONLY | constants.O_DIRECTORY);
    for (let depth = 0; depth < 10_000; depth++) {
      mkdirSync(`/proc/self/fd/${fd}/d`);
      const next = openSync(`/proc/self/fd/${fd}/d`, constants.O_RDONLY | constants.O_DIRECTORY);
      closeSync(fd);
      fd = next;
    }
    closeSync(fd);
    let said = 'nothing thrown';
    try {
      removeTreeOnDevice(tree, 'a test tree');
    } catch (error) {
      said = `${error instanceof UserError ? 'UserError' : 'other'}: ${(error as Error).message}`;
    }
    assert.is(said, `UserError: ${tree} has folders nested more than 2000 deep, which thin-lxc does not walk: remove it with rm -rf --one-file-system ${tree}`);
  } finally {
    spawnSync('rm', ['-rf', '--one-file-system', tree]);
  }
});

// From review r3: whoever writes the tree (root inside a container) chooses its names.
test('a tree whose names are not UTF-8 is removed whole (readdir must not decode them into names that do not exist)', () => {
  const tree = mkdtempSync('/tmp/thin-lxc-unit-');
  try {
    mkdirSync(join(tree, 'sub'));
    writeFileSync(Buffer.concat([Buffer.from(join(tree, 'sub/bad')), Buffer.from([0xff])]), 'x');
    removeTreeOnDevice(tree, 'a test tree');
    assert.not.ok(existsSync(tree), 'the tree is gone');
  } finally {
    spawnSync('rm', ['-rf', tree]);
  }
});

test.run();
