// From review r3: the tools update --disk hands its lock to (e2fsck, resize2fs) must outlive update, as the lock
// does; they write to pipes update reads, so once update is gone their next line kills them (SIGPIPE): e2fsck -fy
// dies half way through its repair, lets the lock go, and a start mounts a damaged image.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skipUnless } from '../../helpers/skip.js';

const runnable = skipUnless(test, 'e2fsck after its caller', process.getuid?.() === 0 && spawnSync('which', ['debugfs']).status === 0, 'needs root and e2fsprogs');

/** Pids whose command line names `text`. */
function pidsNaming(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

if (runnable) {
  test('e2fsck -fy that update started finishes its repair after update is killed', async () => {
    const dir = mkdtempSync('/tmp/thin-lxc-unit-');
    try {
      // An image with many problems, so that e2fsck -fy writes many lines while it repairs.
      mkdirSync(join(dir, 'src'));
      for (let file = 0; file < 300; file++) writeFileSync(join(dir, 'src', `f${file}`), String(file));
      const image = join(dir, 'disk.img');
      spawnSync('truncate', ['-s', '64M', image]);
      assert.is(spawnSync('mkfs.ext4', ['-q', '-d', join(dir, 'src'), image]).status, 0);
      spawnSync('debugfs', ['-w', '-R', 'clri <2>', image]);
      const lock = join(dir, 'lock');
      writeFileSync(lock, '');
      const modules = new URL('../../../src/core/commands.js', import.meta.url).href;
      const caller = spawn(process.execPath, ['--input-type=module', '-e', `const { openSync } = await import('node:fs'); const { repairExt4Image } = await import(${JSON.stringify(modules)}); repairExt4Image(${JSON.stringify(image)}, openSync(${JSON.stringify(lock)}, 'r'));`], { stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => caller.on('exit', () => resolve()));
      // e2fsck held (SIGSTOP) as soon as it runs, its caller killed, then e2fsck let go: no race with its speed.
      let tool: number | undefined;
      for (let attempt = 0; attempt < 3000 && tool === undefined; attempt++) {
        tool = pidsNaming(`e2fsck\0-f\0-y\0${image}`).find((pid) => pid !== caller.pid);
        if (tool === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
        else process.kill(tool, 'SIGSTOP');
      }
      assert.ok(tool, 'e2fsck started');
      caller.kill('SIGKILL');
      await exited;
      process.kill(tool!, 'SIGCONT');
      for (let attempt = 0; attempt < 600 && pidsNaming(image).length > 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
      const checked = spawnSync('e2fsck', ['-f', '-n', image], { encoding: 'utf8' });
      assert.is(checked.status, 0, `the image is left damaged (e2fsck -fn ${checked.status}): e2fsck died with its caller: ${checked.stdout.split('\n').slice(1, 3).join(' / ')}`);
    } finally {
      spawnSync('rm', ['-rf', dir]);
    }
  });
}

test.run();
