// End to end for the everyday commands: bind mounts, custom templates, --dry-run, diff, --autostart, doctor.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { HOSTS_DIR } from '../../src/network/dhcp.js';
import { attach, containerSuite, must, removeLxcContainer, sh, startContainer, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { giveSocat, request, startServers } from '../helpers/net.js';

const { tests: everyday, runnable, cleanup, base, root } = await containerSuite('everyday commands with real LXC', 'ebase');

if (runnable) {
  const host = temporaryRoot();
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };

  everyday.before(async () => {
    cleanup.add(() => sh('rm', ['-rf', host]));
  });

  everyday('bind mounts: a folder and a file, spaces in paths, writes visible on the host, :ro refused inside', async () => {
    const folder = join(host, 'my app');
    mkdirSync(folder);
    writeFileSync(join(folder, 'from-host.txt'), 'hello\n');
    writeFileSync(join(host, 'app config.ini'), 'x=1\n');
    const name = track(uniqueName('mnt'));
    const created = await thinLxc(
      ['create', name, '--base', base, '--root', root, '-m', 'my app:/srv/my app', '-m', `${join(host, 'app config.ini')}:/etc/app config.ini:ro`],
      { cwd: host },
    );
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'cat "/srv/my app/from-host.txt"'), 'hello');
    await attach(name, 'echo from-inside > "/srv/my app/new.txt"');
    assert.is(readFileSync(join(folder, 'new.txt'), 'utf8'), 'from-inside\n');
    assert.is(await attach(name, 'cat "/etc/app config.ini"'), 'x=1');
    const write = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'echo y=2 > "/etc/app config.ini"']);
    assert.is.not(write.exitCode, 0);
    assert.match(write.stderr, 'Read-only file system');
    assert.is(readFileSync(join(host, 'app config.ini'), 'utf8'), 'x=1\n');
    assert.not.ok(existsSync(join('/var/lib/lxc', base, 'rootfs/srv')), 'the mount point is made in the write layer, not the base');
    await must('lxc-stop', ['-n', name]);

    const missing = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '-m', '/no/such/dir:/app']);
    assert.is(missing.exitCode, 2);
    assert.is(missing.stderr.trim(), 'thin-lxc: mount "/no/such/dir:/app": host path /no/such/dir does not exist; create it first');
  });

  everyday('a custom template adds its line; one that drops thin-lxc lines is refused; --autostart is honoured by lxc-autostart', async () => {
    const group = uniqueName('grp').replace(/-/g, '');
    const template = join(host, 'custom.hbs');
    writeFileSync(template, `${(await thinLxc(['template'])).stdout}lxc.group = ${group}\nlxc.environment = THIN_TEMPLATE={{name}}\n`);
    const name = track(uniqueName('tpl'));
    const port = 41_000 + Math.floor(Math.random() * 9_000);
    const created = await thinLxc(['create', name, '--base', base, '--root', root, '--template', template, '--autostart', '-p', `${port}:80`]);
    assert.is(created.exitCode, 0, created.stderr);
    giveSocat(join(root, name));
    assert.match(await must('lxc-ls', ['-f', '-F', 'NAME,GROUPS,AUTOSTART']), new RegExp(`${name}\\s+${group}\\s+1`));

    // lxc-autostart is what the host runs at boot; the group keeps it from starting anyone else's containers.
    await must('lxc-autostart', ['-g', group]);
    await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
    assert.match(await attach(name, 'cat /proc/1/environ | tr "\\\\0" "\\\\n"'), `THIN_TEMPLATE=${name}`);
    await startServers(name);
    assert.is(await request('127.0.0.1', port), `tcp-${name}`, 'forwarding works without a reload');
    await must('lxc-stop', ['-n', name]);

    const broken = join(host, 'broken.hbs');
    writeFileSync(broken, 'lxc.uts.name = {{name}}\nlxc.rootfs.path = dir:{{rootfs}}\n');
    const before = readdirSync(root).sort();
    const refused = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', root, '--template', broken]);
    assert.is(refused.exitCode, 2);
    assert.match(refused.stderr, 'thin-lxc: the config template drops lines thin-lxc needs (lxc.hook.version, lxc.hook.pre-mount, lxc.hook.destroy, lxc.hook.clone, lxc.hook.post-stop)');
    assert.equal(readdirSync(root).sort(), before);
  });

  everyday('--dry-run prints the plan and leaves no trace', async () => {
    const name = uniqueName('dry');
    const snapshot = async () => [
      readdirSync(root).sort().join(','),
      readdirSync('/var/lib/lxc').sort().join(','),
      existsSync(HOSTS_DIR) ? readdirSync(HOSTS_DIR).sort().join(',') : '',
      (await must('iptables-save', [])).split('\n').filter((line) => !line.startsWith('#') && !line.startsWith(':')).join('\n'),
    ];
    const before = await snapshot();
    const dry = await thinLxc(['create', name, '--base', base, '--root', root, '-p', '8999:80', '--dry-run']);
    assert.is(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, `lxc.uts.name = ${name}`);
    assert.match(dry.stdout, '--dport 8999');
    assert.match(dry.stdout, 'nothing was written');
    assert.equal(await snapshot(), before);
  });

  everyday('list, show and doctor write nothing: not the state cache, not even a leftover of a killed create', async () => {
    const name = track(uniqueName('read'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    const leftover = join(root, '.creating-gone-2147483646');
    mkdirSync(leftover);
    rmSync(join(root, '.thin-lxc-states.json'), { force: true });
    const snapshot = () => [readdirSync(root).sort().join(','), readdirSync('/var/lib/lxc').sort().join(','), readdirSync(HOSTS_DIR).sort().join(',')];
    const before = snapshot();
    for (const command of [['list'], ['list', '--json'], ['show', name], ['doctor']]) {
      await thinLxc([...command, '--root', root]);
      assert.equal(snapshot(), before, `thin-lxc ${command.join(' ')} changed nothing`);
    }
    rmSync(leftover, { recursive: true });
    assert.is((await thinLxc(['destroy', name, '--root', root])).exitCode, 0);
  });

  everyday('diff lists what the container added, changed and deleted', async () => {
    const name = track(uniqueName('diff'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', root])).exitCode, 0);
    assert.is((await startContainer(name)).exitCode, 0);
    await attach(name, 'mkdir -p /opt/new && echo a > /opt/new/file && echo more >> /etc/passwd && rm /etc/group && rm -r /etc/init.d && mkdir /etc/init.d && echo x > /etc/init.d/only');
    await must('lxc-stop', ['-n', name]);
    const changes = (await thinLxc(['diff', name, '--root', root])).stdout.split('\n');
    for (const line of ['A /opt', 'A /opt/new', 'A /opt/new/file', 'C /etc/passwd', 'D /etc/group', 'C /etc/init.d', 'A /etc/init.d/only']) {
      assert.ok(changes.includes(line), `${line} in ${JSON.stringify(changes)}`);
    }
    const json = JSON.parse((await thinLxc(['diff', name, '--root', root, '--json'])).stdout) as { kind: string; path: string }[];
    assert.ok(json.some((change) => change.kind === 'D' && change.path === '/etc/group'));
  });

  everyday('list and show give the same facts as a table and as JSON', async () => {
    const listed = JSON.parse((await thinLxc(['list', '--root', root, '--json'])).stdout) as Record<string, unknown>[];
    assert.ok(listed.length >= 2);
    for (const entry of listed) {
      const shown = JSON.parse((await thinLxc(['show', String(entry.name), '--root', root, '--json'])).stdout) as Record<string, unknown>;
      for (const key of ['id', 'name', 'base', 'state', 'ip', 'publish', 'mounts', 'wlayerBytes']) assert.equal(shown[key], entry[key], key);
      assert.type(entry.wlayerBytes, 'number');
    }
    const table = (await thinLxc(['list', '--root', root])).stdout;
    assert.match(table, /^ID\s+NAME\s+STATE\s+BASE\s+IP\s+PORTS\s+MOUNTS\s+WRITES$/m);
  });

  // Its own empty lxcpath: doctor also judges every thin container registered in the lxcpath, and another
  // test run's containers (one killed before its cleanup, or one running beside this) are not this test's to judge.
  everyday("doctor finds nothing wrong with the machine or this suite's containers", async () => {
    const lxcpath = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', lxcpath]));
    const result = await thinLxc(['doctor', '--root', root, '--lxcpath', lxcpath]);
    assert.is(result.exitCode, 0, result.stdout);
    assert.not.match(result.stdout, 'FAIL');
    for (const what of ['LXC', 'union filesystem', 'bridge', 'ip_forward', 'iptables', "lxc-net's dnsmasq", 'hooks']) assert.match(result.stdout, what);
    assert.match(result.stdout, /ok +containers' hooks +[1-9]\d* thin container\(s\) use this installation/, "it judged this suite's containers");
  });

  everyday("doctor names a thin container whose directory other local users can reach (as thin-lxc 0.2 left them), and refresh closes it", async () => {
    const own = temporaryRoot();
    const lxcpath = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', own, lxcpath]));
    const name = track(uniqueName('open'));
    assert.is((await thinLxc(['create', name, '--base', base, '--root', own])).exitCode, 0);
    const doctor = () => thinLxc(['doctor', '--root', own, '--lxcpath', lxcpath]);
    assert.match((await doctor()).stdout, /ok +containers' directories +1 thin container\(s\) closed to other local users/);
    await must('chmod', ['0755', join(own, name)]);
    const open = await doctor();
    assert.is(open.exitCode, 1);
    assert.match(open.stdout, `FAIL  containers' directories ${name}: open to other local users, who could run what root inside left in the write layer (as thin-lxc 0.2 made them): thin-lxc refresh`);
    const refreshed = await thinLxc(['refresh', name, '--root', own]);
    assert.is(refreshed.exitCode, 0, refreshed.stderr);
    assert.match(refreshed.stdout, `Closed to other local users (older versions left them open): ${name}.`);
    assert.match((await doctor()).stdout, /ok +containers' directories +1 thin container\(s\) closed/);
    assert.is((await thinLxc(['destroy', name, '--root', own])).exitCode, 0);
  });

  everyday('doctor exits non-zero and prints the fix when something is wrong', async () => {
    const open = temporaryRoot();
    cleanup.add(() => sh('rm', ['-rf', open]));
    await must('chmod', ['0777', open]);
    const result = await thinLxc(['doctor', '--root', open, '--lxcpath', open]);
    assert.is(result.exitCode, 1);
    assert.match(result.stdout, `FAIL  root directory     ${open} is writable by everyone: chmod o-w ${open}`);
    assert.is(result.stderr.trim(), 'thin-lxc: doctor found 1 problem(s): run the commands shown above');
    const create = await thinLxc(['create', uniqueName('x'), '--base', base, '--root', open]);
    assert.is(create.exitCode, 2);
    assert.match(create.stderr, `thin-lxc: root ${open} is writable by everyone`);
  });
}

everyday.run();
