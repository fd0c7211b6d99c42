// End to end: unprivileged thin containers (create --unprivileged) with real LXC: the user namespace and what it
// keeps root inside from doing, the owners on the host, the base left byte for byte as it was, mounts the host never
// sees (also after a reboot and a kill -9), and the everyday features (ports, address, name, --tmpfs, --ephemeral,
// update, lxc-autostart, thin on thin) unprivileged. Needs thin-lxc setup (root's range in /etc/subuid, subgid).
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readState } from '../../src/state/state.js';
import { hostCgroupVersion } from '../../src/lxc/limits.js';
import { attach, containerSuite, must, removeLxcContainer, sh, startContainer, thinLxc, treeDigest, uniqueName } from '../helpers/host.js';
import { eventually } from '../helpers/locks.js';
import { CLI } from '../helpers/paths.js';
import { giveSocat, request, resolveAtBridge, startServers } from '../helpers/net.js';

const { tests: unprivileged, runnable, cleanup, base, root } = await containerSuite('unprivileged thin containers with real LXC', 'ubase');

if (runnable) {
  const track = (name: string) => {
    cleanup.add(() => removeLxcContainer(name));
    return name;
  };
  const port = () => 41_000 + Math.floor(Math.random() * 9_000);
  const create = async (name: string, ...args: string[]) => {
    const created = await thinLxc(['create', name, '--base', base, '--root', root, ...args]);
    assert.is(created.exitCode, 0, created.stderr);
    return join(root, name);
  };
  const baseRootfs = () => join('/var/lib/lxc', base, 'rootfs');
  let baseBefore = '';

  /** Every mount point under `dir` in every process's mount namespace this host root can read: where a leak would show. */
  const mountsAnywhere = (dir: string): string[] =>
    readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .flatMap((pid) => {
        try {
          return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
            .split('\n')
            .filter((line) => (line.split(' ')[4] ?? '').startsWith(`${dir}/`))
            .map((line) => `${pid}: ${line.split(' ')[4]}`);
        } catch {
          return []; // gone meanwhile
        }
      });
  /** The container's monitor (lxc-start, whose mount namespace holds the union), by its process title. */
  const monitorPid = async (name: string) => (await must('pgrep', ['-f', `^\\[lxc monitor\\] /var/lib/lxc ${name}$`])).trim();
  const mountPointsOf = (pid: string, dir: string) =>
    readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .filter((point) => point.startsWith(`${dir}/`));
  const hostMountsUnder = (dir: string) => mountPointsOf('self', dir);

  unprivileged.before(() => {
    baseBefore = treeDigest(baseRootfs());
  });

  unprivileged('inside, /proc/self/uid_map shows the map and lxc-ls -f UNPRIVILEGED true; root\'s file is owned by 100000 on the host; root inside can neither mknod a block device nor write a host sysctl, which a privileged thin container can; the host sees no mount', async () => {
    const name = track(uniqueName('u'));
    const privileged = track(uniqueName('p'));
    const dir = await create(name, '--unprivileged');
    await create(privileged);
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is((await startContainer(privileged)).exitCode, 0);

    assert.match(await attach(name, 'cat /proc/self/uid_map'), /^0\s+100000\s+65536$/);
    const listed = await must('lxc-ls', ['-f', '-F', 'NAME,UNPRIVILEGED']);
    assert.match(listed, new RegExp(`^${name}\\s+true\\s*$`, 'm'));
    assert.match(listed, new RegExp(`^${privileged}\\s+false\\s*$`, 'm'));
    assert.match((await thinLxc(['show', name, '--root', root])).stdout, 'root inside: unprivileged: uid and gid 100000 on the host (map 100000:65536)');

    await attach(name, 'echo made > /root/made');
    const made = lstatSync(join(dir, 'wlayer', 'root', 'made'));
    assert.equal([made.uid, made.gid], [100000, 100000], 'the file root made inside is owned by 100000 on the host');
    assert.equal([lstatSync(join(dir, 'wlayer')).uid, lstatSync(join(dir, 'wlayer', 'root')).uid], [100000, 100000]);

    const mknod = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', 'mknod /tmp/blk b 254 0 && head -c 1 /tmp/blk']);
    assert.is.not(mknod.exitCode, 0);
    assert.match(mknod.stderr, 'Operation not permitted');

    // /proc/sys is read-only in both (proc:mixed); privileged root can remount it read-write and write a host-wide
    // sysctl (the value it has, so nothing changes); unprivileged root may remount it but the kernel refuses the write.
    const sysctl = 'f=/proc/sys/vm/overcommit_ratio; v=$(cat $f); mount -o remount,rw /proc/sys; echo $v > $f';
    assert.is((await sh('lxc-attach', ['-n', privileged, '--', '/bin/sh', '-c', sysctl])).exitCode, 0, 'a privileged thin container writes it');
    const refused = await sh('lxc-attach', ['-n', name, '--', '/bin/sh', '-c', sysctl]);
    assert.is.not(refused.exitCode, 0);
    assert.match(refused.stderr, 'Permission denied');

    assert.equal(hostMountsUnder(dir), [], 'the host sees neither the union nor the idmapped layers');
    const inMonitor = mountPointsOf(await monitorPid(name), dir);
    assert.equal(inMonitor.sort(), [join(dir, 'image', 'rootfs'), join(dir, 'lowers', '0')].sort(), "the monitor's namespace has them");
    await must('lxc-stop', ['-n', name]);
    await must('lxc-stop', ['-n', privileged]);
    assert.is(treeDigest(baseRootfs()), baseBefore, "the base's rootfs is byte for byte unchanged");
  });

  unprivileged("no other local user reaches a thin container's files, as lxc-create closes LXC's: a privileged one's directory is root's alone, an unprivileged one's is searchable only by its own root (LXC opens its rootfs as it), which still starts; refresh closes a directory an older version left open", async () => {
    const name = track(uniqueName('cu'));
    const privileged = track(uniqueName('cp'));
    const other = track(uniqueName('co'));
    const dir = await create(name, '--unprivileged');
    const privilegedDir = await create(privileged);
    // A file root inside a container could leave on its write layer: a setuid-root shell, say.
    writeFileSync(join(privilegedDir, 'wlayer', 'planted'), 'x');
    writeFileSync(join(dir, 'wlayer', 'planted'), 'x');
    /** Whether `uid` (with the same gid and no other group) can reach `path`. */
    const reaches = async (uid: number, path: string) =>
      (await sh('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', 'stat', '-c', '%n', path])).exitCode === 0;
    assert.ok(await reaches(0, join(privilegedDir, 'wlayer', 'planted')), 'the check itself: root reaches it');
    assert.not.ok(await reaches(65534, join(privilegedDir, 'wlayer', 'planted')), "a local user cannot reach a privileged container's write layer");
    assert.not.ok(await reaches(100000, join(privilegedDir, 'image', 'rootfs')), "nor can an unprivileged container's root");
    assert.not.ok(await reaches(65534, join(dir, 'wlayer', 'planted')), "a local user cannot reach an unprivileged container's write layer");
    assert.not.ok(await reaches(165536, join(dir, 'image', 'rootfs')), "nor can another map's root");
    assert.ok(await reaches(100000, join(dir, 'image', 'rootfs')), 'its own root reaches its rootfs, as LXC needs');
    assert.not.ok((await sh('setpriv', ['--reuid', '100000', '--regid', '100000', '--clear-groups', 'ls', dir])).exitCode === 0, 'its own root cannot list its directory');
    assert.is((await startContainer(name)).exitCode, 0);
    assert.match(await attach(name, 'echo started'), 'started');
    await must('lxc-stop', ['-n', name]);

    const olderDir = await create(other);
    chmodSync(olderDir, 0o755);
    assert.is((await thinLxc(['refresh', other, '--root', root])).exitCode, 0);
    assert.not.ok(await reaches(65534, join(olderDir, 'wlayer')), 'refresh closed it');
  });

  unprivileged('published ports, the static address and the name work unprivileged', async () => {
    const name = track(uniqueName('net'));
    const hostPort = port();
    const dir = await create(name, '--unprivileged', '-p', `${hostPort}:80`);
    giveSocat(dir);
    assert.is((await startContainer(name)).exitCode, 0);
    const { ip } = readState(dir);
    assert.ok(ip, 'it has a static address');
    assert.match(await attach(name, 'ip -4 -o addr show dev eth0'), ` ${ip}/`);
    await startServers(name);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${name}`, 'TCP through the published port reaches the listener inside');
    assert.ok(await eventually(async () => (await resolveAtBridge(name)) === ip, 10_000), 'the name resolves at the bridge');
    await must('lxc-stop', ['-n', name]);
  });

  unprivileged('an LXC reboot works and leaves no duplicate mount; kill -9 of the monitor leaves no mount anywhere, and it starts again', async () => {
    const name = track(uniqueName('rb'));
    const dir = await create(name, '--unprivileged');
    assert.is((await startContainer(name)).exitCode, 0);
    await attach(name, 'echo kept > /root/kept');
    const monitor = await monitorPid(name);
    const before = mountPointsOf(monitor, dir).sort();
    const init = (await must('lxc-info', ['-n', name, '-p', '-H'])).trim();
    await must('lxc-stop', ['-n', name, '-r']);
    const again = await eventually(async () => {
      const pid = (await sh('lxc-info', ['-n', name, '-p', '-H'])).stdout.trim();
      return pid !== '' && pid !== init && (await sh('lxc-info', ['-n', name, '-s', '-H'])).stdout.trim() === 'RUNNING';
    }, 60_000);
    assert.ok(again, `rebooted: ${existsSync(join(dir, 'hook.log')) ? readFileSync(join(dir, 'hook.log'), 'utf8') : ''}`);
    assert.is(await monitorPid(name), monitor, 'the same monitor');
    assert.equal(mountPointsOf(monitor, dir).sort(), before, 'the same mounts, once each');
    assert.is(await attach(name, 'cat /root/kept'), 'kept');
    assert.match(await attach(name, 'cat /proc/self/uid_map'), /^0\s+100000\s+65536$/);

    await must('kill', ['-KILL', monitor]);
    await must('lxc-wait', ['-n', name, '-s', 'STOPPED', '-t', '10']);
    assert.ok(await eventually(() => mountsAnywhere(dir).length === 0, 5_000), `no mount anywhere: ${mountsAnywhere(dir).join(', ')}`);
    assert.is((await startContainer(name)).exitCode, 0, 'it starts again');
    assert.is(await attach(name, 'cat /root/kept'), 'kept');
    await must('lxc-stop', ['-n', name]);
    assert.equal(mountsAnywhere(dir), []);
  });

  unprivileged('--tmpfs, --ephemeral and update (ports and limits) unprivileged', async () => {
    const memory = track(uniqueName('tmp'));
    const memoryDir = await create(memory, '--unprivileged', '--tmpfs=64M');
    assert.is((await startContainer(memory)).exitCode, 0);
    await attach(memory, 'echo gone > /root/gone');
    assert.is(await attach(memory, 'stat -c %u /root/gone; df / | tail -1 | cut -c1-8'), '0\nthin-lxc');
    await must('lxc-stop', ['-n', memory]);
    assert.is((await startContainer(memory)).exitCode, 0);
    assert.is((await sh('lxc-attach', ['-n', memory, '--', 'test', '-e', '/root/gone'])).exitCode, 1, 'the tmpfs write layer is empty at every start');
    await must('lxc-stop', ['-n', memory]);
    assert.equal(mountsAnywhere(memoryDir), []);

    const ephemeral = track(uniqueName('eph'));
    const ephemeralDir = await create(ephemeral, '--unprivileged', '--ephemeral');
    assert.is((await startContainer(ephemeral)).exitCode, 0);
    await must('lxc-stop', ['-n', ephemeral]);
    assert.ok(await eventually(() => !existsSync(ephemeralDir) && !existsSync(join('/var/lib/lxc', ephemeral)), 10_000), 'stopped, it is removed (its union unmounted first in its monitor\'s namespace)');

    const updated = track(uniqueName('upd'));
    const updatedDir = await create(updated, '--unprivileged');
    giveSocat(updatedDir);
    assert.is((await startContainer(updated)).exitCode, 0);
    await startServers(updated);
    const hostPort = port();
    const update = await thinLxc(['update', updated, '--root', root, '-p', `${hostPort}:80`, '--memory', '256M']);
    assert.is(update.exitCode, 0, update.stderr);
    assert.is(await request('127.0.0.1', hostPort), `tcp-${updated}`, 'a port published while it runs answers');
    const file = hostCgroupVersion() === 2 ? 'memory.max' : 'memory.limit_in_bytes';
    assert.is((await must('lxc-cgroup', ['-n', updated, file])).trim(), String(256 * 1024 * 1024), 'the limit is set on the running container');
    await must('lxc-stop', ['-n', updated]);
  });

  unprivileged('lxc-autostart starts an unprivileged thin container', async () => {
    const group = uniqueName('grp').replace(/-/g, '');
    const template = join(root, 'group.hbs');
    writeFileSync(template, `${(await thinLxc(['template'])).stdout}lxc.group = ${group}\n`);
    const name = track(uniqueName('auto'));
    await create(name, '--unprivileged', '--autostart', '--template', template);
    await must('lxc-autostart', ['-g', group]);
    await must('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '20']);
    assert.match(await attach(name, 'cat /proc/self/uid_map'), /^0\s+100000\s+65536$/);
    await must('lxc-stop', ['-n', name]);
  });

  unprivileged('thin on thin: unprivileged over a privileged thin base, and over an unprivileged one with the same map; another map, or privileged over unprivileged, refused in one line', async () => {
    const privileged = track(uniqueName('pb'));
    const privilegedDir = await create(privileged);
    writeFileSync(join(privilegedDir, 'wlayer', 'from-privileged'), 'p\n');
    const over = track(uniqueName('ovp'));
    const created = await thinLxc(['create', over, '--base', privileged, '--root', root, '--unprivileged']);
    assert.is(created.exitCode, 0, created.stderr);
    assert.is((await startContainer(over)).exitCode, 0);
    assert.is(await attach(over, 'cat /from-privileged; stat -c %u /from-privileged'), 'p\n0', "the privileged base's file, owned by root inside");
    await attach(over, 'mkdir -p /srv/mine && echo u > /srv/mine/file');
    await must('lxc-stop', ['-n', over]);

    const stacked = track(uniqueName('ovu'));
    const again = await thinLxc(['create', stacked, '--base', over, '--root', root, '--unprivileged']);
    assert.is(again.exitCode, 0, again.stderr);
    assert.is((await startContainer(stacked)).exitCode, 0);
    assert.is(await attach(stacked, 'cat /srv/mine/file; stat -c %u:%g /srv/mine/file; cat /from-privileged'), 'u\n0:0\np', "its unprivileged base's files, stored in the same map, used as they are");
    await attach(stacked, 'echo s > /srv/mine/file');
    assert.is(lstatSync(join(root, stacked, 'wlayer', 'srv', 'mine', 'file')).uid, 100000);
    await must('lxc-stop', ['-n', stacked]);

    const before = readdirSync(root).sort();
    const fix = `create it with --unprivileged --idmap 100000:65536 as "${over}" has, or commit "${over}" (thin-lxc commit) and stack on that`;
    const otherMap = await thinLxc(['create', uniqueName('x'), '--base', over, '--root', root, '--idmap', '200000:65536']);
    assert.is(otherMap.stderr.trim(), `thin-lxc: base "${over}" is an unprivileged thin container with another map (100000:65536, not 200000:65536): ${fix}`);
    assert.is(otherMap.exitCode, 2);
    const privilegedOver = await thinLxc(['create', uniqueName('x'), '--base', over, '--root', root]);
    assert.is(privilegedOver.stderr.trim(), `thin-lxc: base "${over}" is an unprivileged thin container (map 100000:65536), under which a privileged one cannot stack: ${fix}`);
    assert.is(privilegedOver.exitCode, 2);
    assert.equal(readdirSync(root).sort(), before, 'nothing made');
    assert.is(treeDigest(baseRootfs()), baseBefore, "the base's rootfs is byte for byte unchanged");
  });

  unprivileged('an unprivileged LXC container as base: its rootfs (owned by its map) is used as it is by an unprivileged thin container of the same map; a privileged one or another map is refused', async () => {
    const lxcBase = uniqueName('ub');
    cleanup.add(() => removeLxcContainer(lxcBase));
    const conf = join(root, 'userns.conf');
    writeFileSync(conf, 'lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n');
    await must('lxc-create', ['-n', lxcBase, '-f', conf, '-t', 'busybox'], 120_000);
    const rootfs = join('/var/lib/lxc', lxcBase, 'rootfs');
    assert.is(lstatSync(join(rootfs, 'bin')).uid, 100000, 'lxc-create made its rootfs in its map');
    const digest = treeDigest(rootfs);
    const name = track(uniqueName('onu'));
    const created = await thinLxc(['create', name, '--base', lxcBase, '--root', root, '--unprivileged', '--dry-run']);
    assert.match(created.stdout, '# Unprivileged (map 100000:65536): the write layer is owned by 100000 on the host; no layer shown through idmapped mounts at start');
    assert.is((await thinLxc(['create', name, '--base', lxcBase, '--root', root, '--unprivileged'])).exitCode, 0);
    assert.not.match(readFileSync(join(root, name, 'image', 'config'), 'utf8').split('# This container')[0] ?? '', 'lxc.idmap', "the base's own map lines are not copied");
    assert.is((await startContainer(name)).exitCode, 0);
    assert.is(await attach(name, 'stat -c %u:%g /bin/busybox; cat /proc/self/uid_map'), '0:0\n         0     100000      65536');
    await must('lxc-stop', ['-n', name]);
    const before = readdirSync(root).sort();
    const privileged = await thinLxc(['create', uniqueName('x'), '--base', lxcBase, '--root', root]);
    assert.is(privileged.stderr.trim(), `thin-lxc: base "${lxcBase}" is an unprivileged LXC container (map 100000:65536), under which a privileged one cannot stack: create it with --unprivileged --idmap 100000:65536 as "${lxcBase}" has`);
    assert.is(privileged.exitCode, 2);
    const other = await thinLxc(['create', uniqueName('x'), '--base', lxcBase, '--root', root, '--idmap', '100000:1000']);
    assert.is(other.stderr.trim(), `thin-lxc: base "${lxcBase}" is an unprivileged LXC container with another map (100000:65536, not 100000:1000): create it with --unprivileged --idmap 100000:65536 as "${lxcBase}" has`);
    assert.equal(readdirSync(root).sort(), before);
    assert.is(treeDigest(rootfs), digest, "that base's rootfs is unchanged");
  });

  unprivileged('without lxc.monitor.unshare the pre-start hook refuses to mount in the host\'s namespace: the start fails, saying why, and the host has no mount', async () => {
    const name = track(uniqueName('nsh'));
    const dir = await create(name, '--unprivileged');
    const config = join(dir, 'image', 'config');
    writeFileSync(config, readFileSync(config, 'utf8').replace('lxc.monitor.unshare = 1\n', ''));
    assert.is.not((await sh('lxc-start', ['-n', name, '-d'])).exitCode, 0);
    assert.match(readFileSync(join(dir, 'hook.log'), 'utf8'), "the mount hook runs in the host's mount namespace: keep lxc.monitor.unshare = 1 in the container's config, as templates/config.hbs has it");
    assert.equal(hostMountsUnder(dir), [], 'nothing mounted on the host');
  });

  unprivileged('--dry-run shows the map, the pre-start hook and the idmapped layers, and --json says unprivileged, changing nothing', async () => {
    const name = uniqueName('dry');
    const before = readdirSync(root).sort();
    const dry = await thinLxc(['create', name, '--base', base, '--root', root, '--idmap', '200000:65536', '--dry-run']);
    assert.is(dry.exitCode, 2, 'the map is outside root\'s range');
    assert.match(dry.stderr, "the map 200000:65536 is not within root's ranges in /etc/subuid");
    const planned = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '--dry-run']);
    assert.is(planned.exitCode, 0, planned.stderr);
    for (const line of ['lxc.idmap = u 0 100000 65536', 'lxc.idmap = g 0 100000 65536', 'lxc.monitor.unshare = 1', 'lxc.hook.pre-start = ']) assert.match(planned.stdout, line);
    assert.match(planned.stdout, `# Unprivileged (map 100000:65536): the write layer is owned by 100000 on the host; ${baseRootfs()} shown through idmapped mounts at start`);
    const json = await thinLxc(['create', name, '--base', base, '--root', root, '--unprivileged', '--dry-run', '--json']);
    const report = JSON.parse(json.stdout) as { unprivileged: boolean; idmap: string };
    assert.equal([report.unprivileged, report.idmap], [true, '100000:65536']);
    assert.equal(readdirSync(root).sort(), before);
    assert.not.ok(existsSync(join('/var/lib/lxc', name)));
  });

  unprivileged("setup gives root a range nobody else holds (alice has 100000:65536: root gets 165536:65536) in /etc/subuid and /etc/subgid once, by rename, keeping the files' modes; create's default map follows it; a map overlapping another user's range is refused by create and doctor (on a copy of /etc, in a private mount namespace)", async () => {
    const name = track(uniqueName('ids'));
    await create(name, '--unprivileged');
    const copies = join(root, 'subids');
    const etc = join(copies, 'etc');
    await must('mkdir', ['-p', copies]);
    // A copy of the whole of /etc, not of the two files: setup writes beside them and renames over them, which a
    // file bind-mounted on its own would refuse.
    await must('cp', ['-a', '/etc', etc]);
    writeFileSync(join(etc, 'subuid'), 'alice:100000:65536\n');
    writeFileSync(join(etc, 'subgid'), '');
    chmodSync(join(etc, 'subuid'), 0o600);
    // The copy stands for the host's /etc only inside this namespace: the host's own files are never touched.
    const inNamespace = (command: string) => sh('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', `mount --bind "$1" /etc && ${command}`, 'sh', etc], 120_000);
    const cli = `"${process.execPath}" ${CLI}`;
    const doctor = await inNamespace(`${cli} doctor --root ${root}`);
    // The container made above has the host's map, which is alice's in the copy.
    assert.match(doctor.stdout, `FAIL  unprivileged ids   the map 100000:65536 shares ids with alice's subordinate ids 100000:65536 in /etc/subuid, so alice's own user namespaces would run as the container's ids: choose --idmap within a range of root's that no one else has (root has none there; thin-lxc setup gives root one)`);
    const outside = await inNamespace(`${cli} create ${uniqueName('x')} --base ${base} --root ${root} --idmap 300000:65536 --dry-run`);
    assert.is(outside.exitCode, 2);
    assert.match(outside.stderr, "thin-lxc: the map 300000:65536 is not within root's ranges in /etc/subuid");

    const setup = await inNamespace(`${cli} setup`);
    assert.is(setup.exitCode, 0, setup.stderr);
    assert.match(setup.stdout, "added root:165536:65536 to /etc/subuid: unprivileged containers' ids (LXC maps them with newuidmap, which allows root only its ranges there); 100000:65536 is another user's there, so --unprivileged maps to 165536:65536 on this host");
    assert.match(setup.stdout, 'added root:165536:65536 to /etc/subgid');
    assert.is(readFileSync(join(etc, 'subuid'), 'utf8'), 'alice:100000:65536\nroot:165536:65536\n', "alice's range is not root's");
    assert.is(readFileSync(join(etc, 'subgid'), 'utf8'), 'root:165536:65536\n');
    assert.is((statSync(join(etc, 'subuid')).mode & 0o777).toString(8), '600', 'the mode is kept');
    assert.equal(readdirSync(etc).filter((entry) => /^sub[ug]id./.test(entry)), [], 'no lock or temporary file is left');
    const again = await inNamespace(`${cli} setup`);
    assert.is(again.exitCode, 0, again.stderr);
    assert.not.match(again.stdout, 'added root');
    assert.is(readFileSync(join(etc, 'subuid'), 'utf8'), 'alice:100000:65536\nroot:165536:65536\n', 'once');
    const planned = await inNamespace(`${cli} create ${uniqueName('x')} --base ${base} --root ${root} --unprivileged --dry-run --json`);
    assert.is(planned.exitCode, 0, planned.stderr);
    assert.is((JSON.parse(planned.stdout) as { idmap: string }).idmap, '165536:65536', "the default map is root's range");

    // A host where root was given alice's range by hand (or by an older setup).
    writeFileSync(join(etc, 'subuid'), 'alice:100000:65536\nroot:100000:65536\n');
    writeFileSync(join(etc, 'subgid'), 'root:100000:65536\n');
    const refused = await inNamespace(`${cli} create ${uniqueName('x')} --base ${base} --root ${root} --unprivileged --idmap 100000:65536`);
    assert.is(refused.exitCode, 2);
    assert.is(refused.stderr.trim(), "thin-lxc: the map 100000:65536 shares ids with alice's subordinate ids 100000:65536 in /etc/subuid, so alice's own user namespaces would run as the container's ids: choose --idmap within a range of root's that no one else has (root has 100000:65536 there; remove root's lines that share others' ids from /etc/subuid and /etc/subgid, then thin-lxc setup gives root one)");
    assert.match((await inNamespace(`${cli} doctor --root ${root}`)).stdout, "FAIL  unprivileged ids   the map 100000:65536 shares ids with alice's subordinate ids 100000:65536 in /etc/subuid");
  });

  unprivileged("a root the administrator made 0700 is made searchable by others (o+x) at the first unprivileged create, which says so once", async () => {
    const own = mkdtempSync('/tmp/thin-lxc-uroot-');
    cleanup.add(() => sh('rm', ['-rf', own]));
    const first = uniqueName('ox');
    cleanup.add(() => removeLxcContainer(first));
    const made = await thinLxc(['create', first, '--base', base, '--root', own, '--unprivileged']);
    assert.is(made.exitCode, 0, made.stderr);
    assert.match(made.stderr, `thin-lxc: warning: made ${own} searchable by others (chmod o+x, search without listing): LXC opens an unprivileged container's rootfs below it as uid 100000`);
    assert.is((statSync(own).mode & 0o777).toString(8), '701');
    const second = uniqueName('ox');
    cleanup.add(() => removeLxcContainer(second));
    const again = await thinLxc(['create', second, '--base', base, '--root', own, '--unprivileged']);
    assert.is(again.exitCode, 0, again.stderr);
    assert.not.match(again.stderr, 'searchable');
    for (const name of [first, second]) assert.is((await thinLxc(['destroy', name, '--root', own])).exitCode, 0);
  });

  unprivileged('create --unprivileged on a layer the kernel cannot idmap (an overlay) is refused in one line, with --dry-run too, leaving nothing', async () => {
    const work = join(root, 'overlay-base');
    await must('mkdir', ['-p', `${work}/lower`, `${work}/upper`, `${work}/work`, `${work}/rootfs`]);
    await must('cp', ['-a', `${baseRootfs()}/.`, `${work}/lower`]);
    await must('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${work}/lower,upperdir=${work}/upper,workdir=${work}/work`, `${work}/rootfs`]);
    cleanup.add(() => sh('umount', ['-l', `${work}/rootfs`]));
    writeFileSync(join(work, 'config'), `${readFileSync(join('/var/lib/lxc', base, 'config'), 'utf8').replace(/^lxc\.rootfs\.path.*$/m, '')}\nlxc.rootfs.path = dir:${work}/rootfs\n`);
    const before = readdirSync(root).sort();
    for (const dryRun of [[], ['--dry-run']]) {
      const refused = await thinLxc(['create', uniqueName('x'), '--base', work, '--root', root, '--unprivileged', ...dryRun]);
      assert.is(
        refused.stderr.trim(),
        `thin-lxc: the kernel cannot show the base's layers to an unprivileged container through an idmapped mount (mount_setattr ${work}/rootfs: Invalid argument): that needs Linux 5.19 or later with the base on ext4, xfs or btrfs; or create it without --unprivileged`,
      );
      assert.is(refused.exitCode, 2);
      assert.equal(readdirSync(root).sort(), before);
    }
  });
}

unprivileged.run();
