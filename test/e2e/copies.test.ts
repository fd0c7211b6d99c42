// LXC's own copy tools on a thin container: lxc-copy, lxc-copy -s and lxc-snapshot are refused with one line
// that says what to do instead, and nothing done to a copy (one made before thin-lxc refused them included)
// disturbs the original: not its files, not its forwarding, not its reservation.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { HOSTS_DIR } from '../../src/network/dhcp.js';
import { containerSuite, must, removeLxcContainer, sh, shThroughPipe, startContainer, tagOf, thinLxc, treeDigest, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesOf, startServers } from '../helpers/net.js';

const { tests: copies, runnable, cleanup, base, root } = await containerSuite("LXC's own copy tools on a thin container", 'cbase');

if (runnable) {
  const port = 41_000 + Math.floor(Math.random() * 4_000);
  const original = uniqueName('orig');
  const dir = join(root, original);
  const refusal = (copy: string) =>
    `thin-lxc: "${copy}" is a copy of thin container ${original} made with LXC's own tools (lxc-copy, lxc-snapshot), which cannot copy a thin container ` +
    `(its files are a union that only its own start mounts): make a copy with thin-lxc create ${copy} --base ${original}`;
  /** Everything of the original a copy must not touch; its write layer's digest stands for its files. */
  const originalState = async () => ({
    files: treeDigest(join(dir, 'wlayer')),
    rules: await rulesOf(tagOf(dir)),
    reservation: readFileSync(join(HOSTS_DIR, original), 'utf8'),
    registration: readFileSync(join('/var/lib/lxc', original, 'config'), 'utf8'),
  });
  const answers = async () => assert.is(await request('127.0.0.1', port), `tcp-${original}`, "the original's forwarding answers");

  copies.before(async () => {
    cleanup.add(() => removeLxcContainer(original));
    const created = await thinLxc(['create', original, '--base', base, '--root', root, '-p', `${port}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    giveSocat(dir);
    assert.is((await startContainer(original)).exitCode, 0);
    await startServers(original);
    await must('lxc-attach', ['-n', original, '--', '/bin/sh', '-c', 'echo mine > /etc/written-by-original']);
  });

  copies('lxc-copy, lxc-copy -s and lxc-snapshot are refused with one line saying what to do, and the original is untouched', async () => {
    const refused = async (command: string[], copy: string) => {
      cleanup.add(() => removeLxcContainer(copy));
      const result = await shThroughPipe(command[0]!, [...command.slice(1), copy]);
      assert.is.not(result.exitCode, 0, command.join(' '));
      assert.ok(result.stdout.includes(refusal(copy)), `${command.join(' ')} says why: ${result.stdout}`);
      assert.not.ok(existsSync(join('/var/lib/lxc', copy)), 'LXC removed the half-made copy');
    };
    // Running: its forwarding is what a copy could disturb.
    const rules = await rulesOf(tagOf(dir));
    await refused(['lxc-copy', '-n', original, '--allowrunning', '-N'], uniqueName('full'));
    await refused(['lxc-copy', '-s', '-n', original, '--allowrunning', '-N'], uniqueName('snap'));
    assert.equal(await rulesOf(tagOf(dir)), rules);
    await answers();
    // Stopped: its files, reservation and registration.
    await must('lxc-stop', ['-n', original, '-k']);
    const before = await originalState();
    await refused(['lxc-copy', '-n', original, '-N'], uniqueName('full'));
    await refused(['lxc-copy', '-s', '-n', original, '-N'], uniqueName('snap'));
    const snapshot = await shThroughPipe('lxc-snapshot', ['-n', original]);
    assert.is.not(snapshot.exitCode, 0);
    assert.match(snapshot.stdout, `is a copy of thin container ${original} made with LXC's own tools`);
    assert.match((await must('lxc-snapshot', ['-n', original, '-L'])).trim(), 'No snapshots');
    assert.equal(await originalState(), before);
    assert.is((await startContainer(original)).exitCode, 0);
    await startServers(original);
    await answers();
  });

  copies('a copy made before thin-lxc refused them cannot start, says why, and lxc-destroy removes only the copy', async () => {
    // An older thin-lxc wrote no clone hook: take it out of the config, as that version left it.
    const config = join(dir, 'image/config');
    const current = readFileSync(config, 'utf8');
    writeFileSync(config, current.split('\n').filter((line) => !line.startsWith('lxc.hook.clone')).join('\n'));
    const copy = uniqueName('old');
    cleanup.add(() => removeLxcContainer(copy));
    await must('lxc-copy', ['-n', original, '--allowrunning', '-N', copy]);
    const before = await originalState();

    // While the original runs, the copy's start fails (on its veth, or on the pre-mount hook): the original keeps forwarding.
    assert.is.not((await sh('lxc-start', ['-n', copy, '-d'])).exitCode, 0);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the copy's post-stop hook, had it acted
    await answers();
    assert.equal(await originalState(), before);

    await must('lxc-stop', ['-n', original, '-k']);
    const started = await sh('lxc-start', ['-n', copy, '-d']);
    assert.is.not(started.exitCode, 0, 'the copy does not start');
    const reason = readFileSync(join('/var/lib/lxc', copy, 'hook.log'), 'utf8').trim().split('\n');
    assert.is(reason.length, 1);
    assert.match(reason[0]!, `${refusal(copy)}, and remove this copy with lxc-destroy -n ${copy} (lxc.hook.pre-mount of ${copy})`);
    assert.not.ok(existsSync(join(dir, 'hook.log')), "nothing was written into the original's directory");

    const destroyed = await sh('lxc-destroy', ['-n', copy]);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(existsSync(join('/var/lib/lxc', copy)));
    assert.ok(existsSync(dir), 'the original is still there');
    assert.is((await startContainer(original)).exitCode, 0);
    await startServers(original);
    await answers();
    assert.is(await must('lxc-attach', ['-n', original, '--', 'cat', '/etc/written-by-original']), 'mine');

    const refreshed = await thinLxc(['refresh', original, '--root', root]);
    assert.is(refreshed.exitCode, 0, refreshed.stderr);
    const hookLines = (text: string) => text.split('\n').filter((line) => line.startsWith('lxc.hook.')).sort();
    assert.equal(hookLines(readFileSync(config, 'utf8')), hookLines(current), 'refresh puts the clone hook back');
    const again = uniqueName('again');
    cleanup.add(() => removeLxcContainer(again));
    assert.is.not((await sh('lxc-copy', ['-n', original, '--allowrunning', '-N', again])).exitCode, 0, 'and lxc-copy is refused again');
  });

  copies("lxc-copy's refusal reaches its stderr when that is a file", async () => {
    const copy = uniqueName('file');
    cleanup.add(() => removeLxcContainer(copy));
    const log = join(root, `${copy}.stderr`);
    const ran = await sh('sh', ['-c', 'lxc-copy -n "$1" --allowrunning -N "$2" 2>"$3"', 'sh', original, copy, log]);
    assert.is.not(ran.exitCode, 0, 'lxc-copy is refused');
    assert.is(readFileSync(log, 'utf8'), `${refusal(copy)} (lxc.hook.clone of ${copy})\n`, 'the file holds the refusal');
    assert.not.ok(existsSync(join('/var/lib/lxc', copy)), 'LXC removed the half-made copy');
  });
}

copies.run();
