// What a hook reads from LXC, and whether LXC runs it for its own container or for a copy.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerLockName, LOCK_DIR, lockPath, withContainerLock } from '../../../src/core/lock.js';
import { commitPurpose, copyRefusal, isOwnRun, parseHookContext, refuseDuringCommit, skipDuringCommit, unlockedDuringCommit } from '../../../src/lifecycle/hooks.js';
import { skipUnless } from '../../helpers/skip.js';

const env = { LXC_HOOK_VERSION: '1', LXC_HOOK_TYPE: 'pre-mount', LXC_NAME: 'web1', LXC_CONFIG_FILE: '/var/lib/lxc/web1/config', LXC_ROOTFS_PATH: '/c/w1/image/rootfs', LXC_PID: '4242' };

test("reads LXC's hook environment and the container directory argument", () => {
  assert.equal(parseHookContext(env, ['/c/w1'], 'pre-mount', 'thin-lxc-mount.js'), {
    type: 'pre-mount',
    name: 'web1',
    configFile: '/var/lib/lxc/web1/config',
    rootfsPath: '/c/w1/image/rootfs',
    generation: '4242',
    containerDir: '/c/w1',
    rebooting: false,
  });
});

test('a reboot is LXC_TARGET=reboot at post-stop only: the next start\'s hooks inherit the stale value', () => {
  const at = (type: 'post-stop' | 'pre-mount' | 'start-host', target: string) =>
    parseHookContext({ ...env, LXC_HOOK_TYPE: type, LXC_TARGET: target }, ['/c/w1'], type, 'h.js').rebooting;
  assert.ok(at('post-stop', 'reboot'));
  assert.not.ok(at('post-stop', 'stop'));
  assert.not.ok(at('pre-mount', 'reboot'));
  assert.not.ok(at('start-host', 'reboot'));
});

test('a hook runs for its own container from its registration or its own config, not for a copy under another name or config', () => {
  const own = { name: 'web1', lxcpath: '/var/lib/lxc', imageConfig: '/c/w1/image/config' };
  const context = (name: string, configFile: string) => parseHookContext({ ...env, LXC_NAME: name, LXC_CONFIG_FILE: configFile }, ['/c/w1'], 'pre-mount', 'm.js');
  assert.ok(isOwnRun(context('web1', '/var/lib/lxc/web1/config'), own), 'lxc-start -n web1');
  assert.ok(isOwnRun(context('web1', '/c/w1/image/config'), own), 'lxc-start -n web1 -f /c/w1/image/config');
  assert.not.ok(isOwnRun(context('copy', '/var/lib/lxc/copy/config'), own), 'lxc-copy -N copy');
  assert.not.ok(isOwnRun(context('web1', '/srv/lxc/web1/config'), own), 'lxc-copy -N web1 -p /srv/lxc');
  assert.not.ok(isOwnRun(context('snap0', '/var/lib/lxc/web1/snaps/snap0/config'), own), 'lxc-snapshot');
  assert.is(
    copyRefusal('copy', 'web1'),
    `"copy" is a copy of thin container web1 made with LXC's own tools (lxc-copy, lxc-snapshot), which cannot copy a thin container (its files are a union that only its own start mounts): make a copy with thin-lxc create copy --base web1`,
  );
});

test('lxc.hook.destroy runs without LXC_HOOK_VERSION; that is accepted', () => {
  const { LXC_HOOK_VERSION: _unset, ...destroyEnv } = { ...env, LXC_HOOK_TYPE: 'destroy' };
  assert.is(parseHookContext(destroyEnv, ['/c/w1'], 'destroy', 'd.js').containerDir, '/c/w1');
});

test('refuses the wrong hook type, old-style hooks and a missing argument', () => {
  assert.throws(() => parseHookContext({ ...env, LXC_HOOK_TYPE: 'mount' }, ['/c'], 'pre-mount', 'm.js'), /m.js is a pre-mount hook, not mount: use it as lxc.hook.pre-mount/);
  assert.throws(() => parseHookContext({ ...env, LXC_HOOK_VERSION: '0' }, ['/c'], 'pre-mount', 'm.js'), /needs lxc.hook.version = 1/);
  assert.throws(() => parseHookContext(env, [], 'pre-mount', 'm.js'), /takes one argument/);
});

test('the mount hook runs as pre-mount, or as pre-start (an unprivileged container): each is its type, anything else is refused naming both', () => {
  const types = ['pre-mount', 'pre-start'] as const;
  assert.is(parseHookContext(env, ['/c'], types, 'm.js').type, 'pre-mount');
  const preStart = parseHookContext({ ...env, LXC_HOOK_TYPE: 'pre-start', LXC_PID: undefined }, ['/c'], types, 'm.js');
  assert.equal([preStart.type, preStart.generation], ['pre-start', ''], 'no init yet at pre-start: no LXC_PID');
  assert.throws(
    () => parseHookContext({ ...env, LXC_HOOK_TYPE: 'mount' }, ['/c'], types, 'm.js'),
    (error: Error) => error.message === 'm.js is a pre-mount or pre-start hook, not mount: use it as lxc.hook.pre-mount or lxc.hook.pre-start',
  );
});

const refusalTitle = 'a start is refused at once while a live commit holds the container, and only then';
if (skipUnless(test, refusalTitle, process.getuid?.() === 0, 'needs root to write /run/thin-lxc')) test(refusalTitle, () => {
  const containerDir = `/tmp/thin-lxc-unit-${process.pid}/web1`;
  const context = parseHookContext(env, [containerDir], 'pre-mount', 'thin-lxc-mount.js');
  const file = lockPath(containerLockName(containerDir));
  const refusal = (holder: string) => {
    writeFileSync(file, holder);
    try {
      refuseDuringCommit(context);
      return 'started';
    } catch (error) {
      return (error as Error).message;
    }
  };
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  try {
    assert.is(refusal(`${process.pid} ${commitPurpose('web1', 'img')}\n`), `web1 is being committed to img by pid ${process.pid}: wait for it or stop it`);
    assert.is(refusal(`${process.pid} update web1\n`), 'started', 'another purpose: the hook waits for the lock as usual');
    assert.is(refusal(`2147483646 ${commitPurpose('web1', 'img')}\n`), 'started', 'a commit that is gone holds nothing');
    withContainerLock(containerDir, commitPurpose('web1', 'img'), () => undefined, 100);
    assert.not.throws(() => refuseDuringCommit(context), 'a commit that released the lock refuses nothing, though its pid (this process) lives');
  } finally {
    rmSync(file, { force: true });
  }
});

const postStopTitle = 'while a live commit holds the container, ports-down works without its lock and the ephemeral hook keeps it, and only then';
if (skipUnless(test, postStopTitle, process.getuid?.() === 0, 'needs root to write /run/thin-lxc')) test(postStopTitle, () => {
  const containerDir = `/tmp/thin-lxc-unit-${process.pid}/web2`;
  const context = parseHookContext({ ...env, LXC_NAME: 'web2', LXC_HOOK_TYPE: 'post-stop' }, [containerDir], 'post-stop', 'thin-lxc-ports-down.js');
  const file = lockPath(containerLockName(containerDir));
  const during = (holder: string) => {
    writeFileSync(file, holder);
    return [unlockedDuringCommit(context), skipDuringCommit(context)];
  };
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  try {
    assert.equal(during(`${process.pid} ${commitPurpose('web2', 'img')}\n`), [
      `web2 is being committed to img by pid ${process.pid}: this stop is undone without its lock, which commit never needs for forwarding`,
      `web2 is being committed to img by pid ${process.pid}: kept, for the next thin-lxc command to remove`,
    ]);
    assert.equal(during(`${process.pid} update web2\n`), [undefined, undefined], 'another purpose: the hooks wait for the lock as usual');
    assert.equal(during(`2147483646 ${commitPurpose('web2', 'img')}\n`), [undefined, undefined], 'a commit that is gone holds nothing');
  } finally {
    rmSync(file, { force: true });
  }
});

test.run();
