// End to end for the base's lxc_snapshots registration: a thin container is listed in its base's lxc_snapshots in
// LXC's own format, so lxc-destroy of the base refuses ("has clones") as it does for LXC's overlay snapshots;
// thin-lxc destroy refuses while another root's thin container stacks on a thin base; a base removed by hand is named
// by list and doctor.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { BUSYBOX, containerSuite, must, removeLxcContainer, sh, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';

const { tests: registration, runnable, cleanup, base, root } = await containerSuite("bases' lxc_snapshots registration with real LXC", 'sbase');

if (runnable) {
  const LXCPATH = '/var/lib/lxc';
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const snapshotsOf = (dir: string) => join(dir, 'lxc_snapshots');
  const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '(none)');
  /** A base of the test's own, which it may destroy. */
  const ownBase = async (label: string) => {
    const name = track(uniqueName(label));
    await must('lxc-create', ['-n', name, ...BUSYBOX], 300_000);
    return name;
  };
  const create = async (name: string, baseName: string, at = root) => {
    const made = await thinLxc(['create', track(name), '--base', baseName, '--root', at]);
    assert.is(made.exitCode, 0, made.stderr);
  };

  registration('lxc-destroy of a base refuses while a thin container stacks on it, in LXC\'s format; it works once thin-lxc destroyed the thin one', async () => {
    const plain = await ownBase('plain');
    const thin = uniqueName('on');
    await create(thin, plain);
    assert.is(read(snapshotsOf(join(LXCPATH, plain))), `${LXCPATH}\n${thin}\n`, 'one entry: the lxcpath and name LXC would find it by');

    const refused = await sh('lxc-destroy', ['-n', plain]);
    assert.is.not(refused.exitCode, 0);
    assert.match(refused.stderr, `${plain} has clones`);
    assert.ok(existsSync(join(LXCPATH, plain, 'config')), 'the base is still there');

    assert.is((await thinLxc(['destroy', thin, '--root', root])).exitCode, 0);
    assert.not.ok(existsSync(snapshotsOf(join(LXCPATH, plain))), 'the last entry gone, the file goes, as LXC does');
    assert.is((await sh('lxc-destroy', ['-n', plain])).exitCode, 0);
    assert.not.ok(existsSync(join(LXCPATH, plain)));
  });

  registration("thin on thin: lxc-destroy of the thin base refuses while one stacks on it; lxc-destroy of each in turn works and unregisters it from its base", async () => {
    const [lower, upper] = [uniqueName('lower'), uniqueName('upper')];
    await create(lower, base);
    await create(upper, lower);
    assert.is(read(snapshotsOf(join(LXCPATH, lower))), `${LXCPATH}\n${upper}\n`);
    assert.match(read(snapshotsOf(join(LXCPATH, base))), `${LXCPATH}\n${lower}\n`);

    const refused = await sh('lxc-destroy', ['-n', lower]);
    assert.is.not(refused.exitCode, 0);
    assert.match(refused.stderr, `${lower} has clones`);
    assert.ok(existsSync(join(root, lower, 'thin-lxc.ini')), 'the thin base is whole');

    assert.is((await sh('lxc-destroy', ['-n', upper])).exitCode, 0);
    const destroyed = await sh('lxc-destroy', ['-n', lower]);
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(read(snapshotsOf(join(LXCPATH, base))).includes(`\n${lower}\n`), "the thin base left its base's file");
  });

  registration("lxc-destroy of a thin base that passed LXC's check before a create listed a container on it refuses in its hook, which looks again under LXC's lock: the base stays whole", async () => {
    const [lower, upper] = [uniqueName('gone'), uniqueName('late')];
    await create(lower, base);
    // lxc-destroy looks for the base's dependents without LXC's lock, then opens the lock's file again (its first
    // open is for reading the config), takes the lock and runs the destroy hook: strace stops it right after that
    // open, before the lock, while a create lists a container on the base.
    // LXC spells it with a double slash (lxclock.c), which strace -P matches only as given.
    const lock = `/run/lxc/lock/${LXCPATH}/.${lower}`;
    const destroying = execa('strace', ['-P', lock, '-e', 'trace=openat', '-e', 'inject=openat:signal=SIGSTOP:when=2', 'lxc-destroy', '-n', lower], { reject: false, all: true });
    cleanup.add(() => destroying.kill('SIGKILL'));
    let said = '';
    destroying.all!.on('data', (data: Buffer) => (said += data.toString()));
    const stopped = await eventually(() => said.includes('stopped by SIGSTOP'), 30_000);
    const [destroyer] = stopped ? readFileSync(`/proc/${destroying.pid}/task/${destroying.pid}/children`, 'utf8').trim().split(' ').map(Number) : [];
    assert.ok(stopped && destroyer, `lxc-destroy stopped after its check, before LXC's lock: ${said}`);
    cleanup.add(() => sh('kill', ['-CONT', String(destroyer)]));
    await create(upper, lower);
    process.kill(destroyer!, 'SIGCONT');
    const destroyed = await destroying;
    assert.ok(existsSync(join(root, lower, 'thin-lxc.ini')), `the thin base is whole under the container on it: ${said}`);
    assert.is.not(destroyed.exitCode, 0, 'lxc-destroy failed');
    // The hook runs under LXC's lock, under which create writes its entry: it looks again, and refuses.
    assert.match(read(join(root, lower, 'hook.log')), `${lower} is the base of thin containers ${upper}`);
    assert.is(read(snapshotsOf(join(LXCPATH, lower))), `${LXCPATH}\n${upper}\n`);
  });

  registration("the caller's PERL5OPT and PERL5LIB load nothing into the perl that takes LXC's lock, at create and destroy", async () => {
    const modules = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', modules]));
    const marker = join(modules, 'loaded');
    writeFileSync(join(modules, 'ThinLxcMarker.pm'), `package ThinLxcMarker; open(my $f, '>', '${marker}'); 1;\n`);
    // The module works: a plain perl with these variables loads it.
    const env = { PERL5LIB: modules, PERL5OPT: '-MThinLxcMarker' };
    assert.is((await execa('perl', ['-e', '1'], { reject: false, env })).exitCode, 0);
    assert.ok(existsSync(marker), 'the module writes its marker when perl loads it');
    rmSync(marker);

    const name = track(uniqueName('perl'));
    const made = await thinLxc(['create', name, '--base', base, '--root', root], { env });
    assert.is(made.exitCode, 0, made.stderr);
    assert.ok(read(snapshotsOf(join(LXCPATH, base))).includes(`\n${name}\n`), 'registered, so the lock was taken');
    const destroyed = await thinLxc(['destroy', name, '--root', root], { env });
    assert.is(destroyed.exitCode, 0, destroyed.stderr);
    assert.not.ok(existsSync(marker), 'perl never loaded the caller\'s module');
  });

  registration('thin-lxc destroy of a thin base refuses while a thin container of another root stacks on it', async () => {
    const other = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', other]));
    const [lower, upper] = [uniqueName('tbase'), uniqueName('elsewhere')];
    await create(lower, base);
    await create(upper, lower, other);

    const refused = await thinLxc(['destroy', lower, '--root', root]);
    assert.is(refused.exitCode, 2, refused.stderr);
    assert.is(refused.stderr.trim(), `thin-lxc: ${lower} is the base of thin containers ${upper} (${LXCPATH}/${upper}): destroy them first`);
    assert.ok(existsSync(join(root, lower, 'thin-lxc.ini')));

    assert.is((await thinLxc(['destroy', upper, '--root', other])).exitCode, 0);
    assert.is((await thinLxc(['destroy', lower, '--root', root])).exitCode, 0);
  });

  registration('a base removed by hand is named by list and doctor, with what to do; a container made before the registration is found by doctor and registered by refresh', async () => {
    const doomed = await ownBase('gone');
    const orphan = uniqueName('orphan');
    await create(orphan, doomed);
    // A container from before thin-lxc registered in lxc_snapshots: its base's file has no entry for it.
    const old = uniqueName('old');
    await create(old, base);
    const baseFile = snapshotsOf(join(LXCPATH, base));
    writeFileSync(baseFile, read(baseFile).replace(`${LXCPATH}\n${old}\n`, ''));

    const doctor = await thinLxc(['doctor', '--root', root]);
    assert.match(doctor.stdout, `${old}: not in ${baseFile}, so lxc-destroy -n ${base} would not refuse (made before thin-lxc registered there): thin-lxc refresh`);
    const refreshed = await thinLxc(['refresh', old, '--root', root]);
    assert.is(refreshed.exitCode, 0, refreshed.stderr);
    assert.match(read(baseFile), `${LXCPATH}\n${old}\n`);

    rmSync(join(LXCPATH, doomed), { recursive: true, force: true });
    const list = await thinLxc(['list', '--root', root]);
    assert.is(list.exitCode, 0, list.stderr);
    assert.match(list.stdout, `Warning: base ${doomed} of ${orphan} is gone (${LXCPATH}/${doomed}): ${orphan} cannot start; restore the base, or thin-lxc destroy ${orphan}`);
    const after = await thinLxc(['doctor', '--root', root]);
    assert.is(after.exitCode, 1);
    assert.match(after.stdout, `${orphan}: its base ${LXCPATH}/${doomed} is gone, so it cannot start: restore the base, or thin-lxc destroy ${orphan}`);
    assert.is((await thinLxc(['destroy', orphan, '--root', root])).exitCode, 0, 'a container whose base is gone can still be destroyed');
  });

  registration("creates at the same time as lxc-copy -s each get their entry; thin-lxc waits for LXC's own lock on the base", async () => {
    const shared = await ownBase('shared');
    const snapshot = track(uniqueName('snap'));
    const names = [0, 1, 2, 3].map(() => track(uniqueName('par')));
    const runs = await Promise.all([
      ...names.map((name) => thinLxc(['create', name, '--base', shared, '--root', root])),
      sh('lxc-copy', ['-n', shared, '-N', snapshot, '-s', '-B', 'overlay']),
    ]);
    for (const ran of runs) assert.is(ran.exitCode, 0, ran.stderr);
    const entries = read(snapshotsOf(join(LXCPATH, shared)));
    for (const name of [...names, snapshot]) assert.match(entries, `${LXCPATH}\n${name}\n`);
    assert.is(entries.split('\n').length, 2 * 5 + 1, 'five entries, each once');

    // LXC's own lock on the base, held by a process of the test (an open file description lock, as LXC takes it).
    const lock = join('/run/lxc/lock', LXCPATH, `.${shared}`);
    const holder = execa('perl', ['-e', `open(my $fh, '+<', '${lock}') or die; my $l = pack('s s x4 q q i x4', 1, 0, 0, 0, 0); fcntl($fh, 38, $l) or die; print "held\\n"; $| = 1; sleep 60;`], { reject: false, buffer: false });
    cleanup.add(() => holder.kill('SIGKILL'));
    await new Promise<void>((done) => holder.stdout!.once('data', () => done()));
    const late = track(uniqueName('late'));
    const waiting = thinLxc(['create', late, '--base', shared, '--root', root]);
    let finished = false;
    void waiting.finally(() => (finished = true));
    // The kernel lists a process blocked on an OFD lock as a "->" line for the lock file's inode (bounded wait).
    const inode = statSync(lock).ino;
    const blocked = () => readFileSync('/proc/locks', 'utf8').split('\n').some((line) => line.includes('-> OFDLCK') && line.includes(`:${inode} `));
    for (let tries = 0; tries < 100 && !blocked() && !finished; tries++) await new Promise((done) => setTimeout(done, 100));
    assert.ok(blocked(), 'the create waits for LXC\'s lock on the base');
    assert.not.ok(finished);
    assert.not.ok(read(snapshotsOf(join(LXCPATH, shared))).includes(`\n${late}\n`));
    holder.kill('SIGKILL');
    const done = await waiting;
    assert.is(done.exitCode, 0, done.stderr);
    assert.match(read(snapshotsOf(join(LXCPATH, shared))), `${LXCPATH}\n${late}\n`);

    // LXC's removal of its snapshot leaves thin-lxc's entries, and thin-lxc's removals leave LXC's.
    assert.is((await sh('lxc-destroy', ['-n', snapshot])).exitCode, 0);
    for (const name of [...names, late]) assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
    assert.not.ok(existsSync(snapshotsOf(join(LXCPATH, shared))));
  });

  registration('a base in another lxcpath, given by path: lxc-destroy -P of it refuses; ephemeral, swept and destroyed containers all leave its file', async () => {
    const lxcpath = temporaryRoot();
    const other = uniqueName('far');
    cleanup.add(async () => {
      await sh('lxc-destroy', ['-P', lxcpath, '-n', other, '-f']);
      await sh('rm', ['-rf', lxcpath]);
    });
    await must('lxc-create', ['-P', lxcpath, '-n', other, ...BUSYBOX], 300_000);
    const baseDir = join(lxcpath, other);
    const [kept, ephemeral] = [uniqueName('kept'), uniqueName('eph')];
    await create(kept, baseDir);
    const made = await thinLxc(['create', track(ephemeral), '--base', baseDir, '--root', root, '--ephemeral']);
    assert.is(made.exitCode, 0, made.stderr);
    assert.is(read(snapshotsOf(baseDir)), `${LXCPATH}\n${kept}\n${LXCPATH}\n${ephemeral}\n`);
    const refused = await sh('lxc-destroy', ['-P', lxcpath, '-n', other]);
    assert.is.not(refused.exitCode, 0);
    assert.match(refused.stderr, `${other} has clones`);

    // The ephemeral one's stop destroys it, and its entry goes with it.
    assert.is((await sh('lxc-start', ['-n', ephemeral, '-d'])).exitCode, 0);
    await must('lxc-wait', ['-n', ephemeral, '-s', 'RUNNING', '-t', '20']);
    await must('lxc-stop', ['-n', ephemeral, '-k']);
    for (let tries = 0; tries < 100 && existsSync(join(root, ephemeral)); tries++) await new Promise((done) => setTimeout(done, 100));
    assert.is(read(snapshotsOf(baseDir)), `${LXCPATH}\n${kept}\n`);

    // A create killed after it listed itself: the next create's sweep removes its entry with the rest of it.
    const killed = uniqueName('killed');
    const state = readFileSync(join(root, kept, 'thin-lxc.ini'), 'utf8')
      .replace(/^ip = .*$/m, 'ip = ""')
      .replace(/^veth = .*$/m, 'veth = ""')
      .replace(/^name = .*$/m, `name = ${JSON.stringify(killed)}`)
      .replace(/^id = .*$/m, `id = ${JSON.stringify(killed)}`);
    const leftover = join(root, `.creating-${killed}-4194400`);
    mkdirSync(leftover);
    writeFileSync(join(leftover, 'thin-lxc.ini'), state);
    writeFileSync(snapshotsOf(baseDir), `${read(snapshotsOf(baseDir))}${LXCPATH}\n${killed}\n`);
    await create(uniqueName('sweeper'), base);
    assert.is(read(snapshotsOf(baseDir)), `${LXCPATH}\n${kept}\n`);

    assert.is((await thinLxc(['destroy', kept, '--root', root])).exitCode, 0);
    assert.not.ok(existsSync(snapshotsOf(baseDir)));
    assert.is((await sh('lxc-destroy', ['-P', lxcpath, '-n', other])).exitCode, 0);
  });
}

registration.run();
