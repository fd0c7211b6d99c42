// A host that lives a life: services on the ports a user publishes, names an ini file would misread, a reboot
// that has not loaded overlay yet, several roots and lxcpaths, and node moving under existing containers.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { CLI } from '../helpers/paths.js';
import { containerSuite, must, removeLxcContainer, sh, startContainer, tagOf, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { giveSocat, request, rulesLeftAfterStop, startServers } from '../helpers/net.js';

const { tests: life, runnable, cleanup, base, root } = await containerSuite('a host that lives a life', 'hbase');

if (runnable) {
  const port = 46_000 + Math.floor(Math.random() * 4_000);
  const create = async (name: string, ...extra: string[]) => {
    cleanup.add(() => removeLxcContainer(name));
    const created = await thinLxc(['create', name, '--base', base, '--root', root, ...extra]);
    assert.is(created.exitCode, 0, created.stderr);
    return created;
  };

  life('a host port a host process listens on is refused, naming the process; --force publishes it; doctor reports it', async () => {
    for (const [protocol, listen] of [['tcp', `TCP4-LISTEN:${port},reuseaddr,fork`], ['udp', `UDP4-RECVFROM:${port + 1},fork`]] as const) {
      const service = spawn('socat', [listen, 'SYSTEM:echo host'], { stdio: 'ignore' });
      cleanup.add(() => service.kill('SIGKILL'));
      const hostPort = protocol === 'tcp' ? port : port + 1;
      for (let i = 0; i < 100 && !readFileSync(`/proc/net/${protocol}`, 'utf8').includes(`:${hostPort.toString(16).toUpperCase()} `); i++) await new Promise((r) => setTimeout(r, 20));
      const name = uniqueName(`busy${protocol}`);
      cleanup.add(() => removeLxcContainer(name));
      const refused = await thinLxc(['create', name, '--base', base, '--root', root, '-p', `${hostPort}:80/${protocol}`]);
      assert.is(refused.exitCode, 2);
      assert.is(
        refused.stderr.trim(),
        `thin-lxc: host port ${hostPort}/${protocol} (of ${hostPort}:80/${protocol}) is in use by socat (pid ${service.pid}), listening on 0.0.0.0:${hostPort}: ` +
          'publishing it would take it away from them; choose another host port, or pass --force to publish it anyway',
      );
      assert.not.ok(existsSync(join(root, name)));
      await create(name, '-p', `${hostPort}:80/${protocol}`, '--force');
      const doctor = await thinLxc(['doctor', '--root', root]);
      assert.is(doctor.exitCode, 1);
      assert.match(doctor.stdout, `FAIL  published ports    ${name}: host port ${hostPort}/${protocol} (of ${hostPort}:80/${protocol}) is in use by socat (pid ${service.pid})`);
      assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
      service.kill('SIGKILL');
    }
  });

  life('names an ini file would misread (true, null, 0x10, 1e3, on, ...) round-trip: listed, started, destroyed', async () => {
    const names = ['true', 'false', 'null', '0x10', '1e3', 'on'].map((word) => `${word}`);
    // The names themselves, as users type them: unique per run through a root of their own and cleanup.
    const lone = temporaryRoot();
    cleanup.add(() => rmSync(lone, { recursive: true, force: true }));
    for (const name of names) {
      if (existsSync(join('/var/lib/lxc', name))) {
        console.log(`  (name ${name} is taken by an LXC container on this host: left out)`);
        continue;
      }
      cleanup.add(() => removeLxcContainer(name));
      const created = await thinLxc(['create', name, '--base', base, '--root', lone]);
      assert.is(created.exitCode, 0, created.stderr);
    }
    const made = names.filter((name) => existsSync(join(lone, name)));
    assert.ok(made.length >= 4, 'most of the names were free here');
    const listed = JSON.parse((await thinLxc(['list', '--root', lone, '--json'])).stdout) as { name: string; id: string }[];
    assert.equal(listed.map((entry) => entry.name).sort(), [...made].sort(), 'list shows each under its own name');
    for (const name of made) assert.is(JSON.parse((await thinLxc(['show', name, '--root', lone, '--json'])).stdout).name, name);
    const first = made[0]!;
    assert.is((await startContainer(first)).exitCode, 0, `${first} starts: its hooks read its state`);
    assert.is((await must('lxc-attach', ['-n', first, '--', 'hostname'])).trim(), first);
    await must('lxc-stop', ['-n', first, '-k']);
    for (const name of made) assert.is((await thinLxc(['destroy', name, '--root', lone])).exitCode, 0, name);
  });

  life('right after a reboot overlay is a module not loaded yet: create, doctor and the start do not refuse', async () => {
    const name = uniqueName('boot');
    cleanup.add(() => removeLxcContainer(name));
    const scratch = mkdtempSync('/tmp/thin-lxc-boot-');
    cleanup.add(() => rmSync(scratch, { recursive: true, force: true }));
    const filesystems = join(scratch, 'filesystems');
    writeFileSync(filesystems, readFileSync('/proc/filesystems', 'utf8').split('\n').filter((line) => !/\toverlay$/.test(line)).join('\n'));
    const modulesDep = join(scratch, 'modules.dep');
    writeFileSync(modulesDep, 'kernel/fs/overlayfs/overlay.ko.xz:\n');
    // A mount point for the module tree, where this kernel has none (the tree itself is a tmpfs in the namespace).
    if (!existsSync('/lib/modules')) {
      mkdirSync('/lib/modules');
      cleanup.add(() => rmdirSync('/lib/modules'));
    }
    // A private mount namespace that looks like a modular kernel just after boot: overlay.ko in the module
    // tree, overlay not in /proc/filesystems. (This kernel has it built in, so the mount itself works.)
    const script = [
      'set -e',
      `mount --bind ${filesystems} /proc/filesystems`,
      '! grep -q overlay /proc/filesystems',
      'mount -t tmpfs thin-lxc-test /lib/modules',
      'mkdir -p "/lib/modules/$(uname -r)"',
      `cp ${modulesDep} "/lib/modules/$(uname -r)/modules.dep"`,
      `"$NODE" ${CLI} create ${name} --base ${base} --root ${root}`,
      `"$NODE" ${CLI} doctor --root ${root} | grep 'union filesystem'`,
      `lxc-start -n ${name} -d`,
    ].join('\n');
    const booted = await execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { reject: false, env: { NODE: process.execPath } });
    assert.is(booted.exitCode, 0, `${booted.stdout}\n${booted.stderr}`);
    assert.match(String(booted.stdout), 'ok    union filesystem   overlay (a module not loaded yet: the first start loads it)');
    await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
    assert.is((await must('lxc-attach', ['-n', name, '--', 'hostname'])).trim(), name);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  life('another lxcpath: reload keeps its live forwarding; another root: destroy NAME finds it through its registration', async () => {
    const lxcpath = mkdtempSync('/tmp/thin-lxc-lxcpath-');
    cleanup.add(() => rmSync(lxcpath, { recursive: true, force: true }));
    const name = uniqueName('elsewhere');
    cleanup.add(async () => {
      await sh('lxc-stop', ['-P', lxcpath, '-n', name, '-k']);
      await sh('lxc-destroy', ['-P', lxcpath, '-n', name]);
    });
    const created = await thinLxc(['create', name, '--base', join('/var/lib/lxc', base), '--root', root, '--lxcpath', lxcpath, '-p', `${port + 2}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    giveSocat(join(root, name));
    assert.is((await sh('lxc-start', ['-P', lxcpath, '-n', name, '-d'])).exitCode, 0);
    await must('lxc-wait', ['-P', lxcpath, '-n', name, '-s', 'RUNNING', '-t', '20']);
    await must('lxc-attach', ['-P', lxcpath, '-n', name, '--', '/bin/sh', '-c', `(/socat TCP4-LISTEN:80,fork,reuseaddr SYSTEM:"echo tcp-${name}" </dev/null >/dev/null 2>&1 &); sleep 0.5`]);
    assert.is(await request('127.0.0.1', port + 2), `tcp-${name}`);
    const reloaded = await thinLxc(['reload', '--root', root]); // the default lxcpath: not where it is registered
    assert.is(reloaded.exitCode, 0, reloaded.stderr);
    assert.match(reloaded.stdout, `re-applied for 1 running thin container(s): ${name}`);
    assert.is(await request('127.0.0.1', port + 2), `tcp-${name}`, 'its forwarding is still there');
    await must('lxc-stop', ['-P', lxcpath, '-n', name, '-k']);
    assert.is((await thinLxc(['destroy', name, '--root', root, '--lxcpath', lxcpath])).exitCode, 0);

    const otherRoot = temporaryRoot();
    cleanup.add(() => rmSync(otherRoot, { recursive: true, force: true }));
    const stray = uniqueName('stray');
    cleanup.add(() => removeLxcContainer(stray));
    assert.is((await thinLxc(['create', stray, '--base', base, '--root', otherRoot])).exitCode, 0);
    const found = await execa(process.execPath, [CLI, 'destroy', stray], { reject: false, env: { THIN_LXC_CONFIG: '/nonexistent' } });
    assert.is(found.exitCode, 0, String(found.stderr));
    assert.not.ok(existsSync(join(otherRoot, stray)) || existsSync(join('/var/lib/lxc', stray)), 'destroyed where it lived');
  });

  life('node moved: doctor names the containers whose hooks use it, and refresh makes them start again', async () => {
    const elsewhere = mkdtempSync('/tmp/thin-lxc-node-');
    cleanup.add(() => rmSync(elsewhere, { recursive: true, force: true }));
    mkdirSync(join(elsewhere, 'bin'));
    const oldNode = join(elsewhere, 'bin/node');
    copyFileSync(process.execPath, oldNode);
    await must('chmod', ['755', oldNode]);
    const name = uniqueName('moved');
    cleanup.add(() => removeLxcContainer(name));
    const created = await execa(oldNode, [CLI, 'create', name, '--base', base, '--root', root, '-p', `${port + 3}:80`], { reject: false });
    assert.is(created.exitCode, 0, String(created.stderr));
    assert.match(readFileSync(join(root, name, 'image/config'), 'utf8'), `${oldNode} `);
    giveSocat(join(root, name));
    rmSync(oldNode); // an nvm or n upgrade, a distro upgrade that moved it

    assert.is.not((await sh('lxc-start', ['-n', name, '-d'])).exitCode, 0, 'its hooks cannot run');
    const doctor = await thinLxc(['doctor', '--root', root]);
    assert.is(doctor.exitCode, 1);
    // Other thin containers on the host may share the line: only this container's part of it is asserted.
    const hooksLine = doctor.stdout.split('\n').find((line) => line.startsWith("FAIL  containers' hooks  ")) ?? '';
    assert.match(hooksLine, `${name}: its hooks run node ${oldNode}, which is missing`);
    assert.ok(hooksLine.endsWith(': thin-lxc refresh'), hooksLine);
    const dry = await thinLxc(['refresh', name, '--root', root, '--dry-run']);
    assert.match(dry.stdout, `Would point the hooks of 1 thin container(s) at this installation: ${name}.`);
    const refreshed = await thinLxc(['refresh', name, '--root', root]);
    assert.is(refreshed.exitCode, 0, refreshed.stderr);
    assert.match(refreshed.stdout, `Pointed the hooks of 1 thin container(s) at this installation: ${name}.`);
    assert.not.match((await thinLxc(['doctor', '--root', root])).stdout, `${name}: its hooks`, 'doctor has nothing to say about it any more');
    assert.is((await startContainer(name)).exitCode, 0);
    await startServers(name);
    assert.is(await request('127.0.0.1', port + 3), `tcp-${name}`);
    await must('lxc-stop', ['-n', name, '-k']);
    assert.equal(await rulesLeftAfterStop(new RegExp(tagOf(join(root, name)))), [], 'its own rules are gone after stop');
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });
}

life.run();
