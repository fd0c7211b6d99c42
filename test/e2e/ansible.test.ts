// End to end for the README's Ansible play, run by ansible-playbook against this host (connection local): check
// mode makes nothing, the first run changes, the second reports changed=0. The play is the README's own, with
// this suite's names, base, root and a free port; the thin-lxc it runs is the tree's built CLI.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { containerSuite, removeLxcContainer, sh, temporaryRoot, thinLxc, uniqueName } from '../helpers/host.js';
import { CLI, REPO } from '../helpers/paths.js';
import { skipUnless } from '../helpers/skip.js';

/** The fenced yaml block that holds the play, from README.md or, once the README links to it, a page of docs/. */
function documentedPlay(): string {
  const docs = existsSync(join(REPO, 'docs')) ? readdirSync(join(REPO, 'docs'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.md')).map((file) => join('docs', file)) : [];
  for (const page of ['README.md', ...docs.sort()]) {
    const blocks = [...readFileSync(join(REPO, page), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]!);
    const play = blocks.find((block) => block.includes('thin-lxc create web1'));
    if (play) return play;
  }
  return '';
}

const { tests: ansible, runnable, cleanup, base, root } = await containerSuite("the README's Ansible play, run by ansible-playbook", 'abase');
const playbook = (await sh('which', ['ansible-playbook'])).stdout.trim();
const title = "the README's Ansible play";

if (runnable && skipUnless(ansible, title, playbook !== '', 'ansible-playbook is not installed (apt-get install ansible-core, as scripts/setup-host.sh does)')) {
  const [web, old] = [uniqueName('web'), uniqueName('old')];
  const hostPort = 57_000 + Math.floor(Math.random() * 8_000);
  const work = temporaryRoot();
  const env: Record<string, string> = {};

  ansible.before(async () => {
    cleanup.add(() => sh('rm', ['-rf', work]));
    for (const name of [web, old]) {
      cleanup.add(async () => {
        await thinLxc(['destroy', name, '--root', root, '--force']);
        await removeLxcContainer(name);
      });
    }
    // The play as the README has it; only its names, base and host port are this suite's. Names are replaced
    // where they are arguments (`create web1`, `-n web1`), not in the play's own variables (`register: web1`).
    const play = documentedPlay();
    assert.match(play, /thin-lxc create web1/, 'the README (or a page of docs/) has the play');
    const ours = play
      .replace(/(?<=(?:create|destroy|-n) )web1\b/g, web)
      .replace(/(?<=destroy )old1\b/g, old)
      .replace('--base nginx-image', `--base ${base}`)
      .replace('-p 8080:80', `-p ${hostPort}:80`);
    assert.not.match(ours, /(?:create|destroy|-n) (?:web1|old1)\b|nginx-image|8080/, 'every name, the base and the port are replaced');
    writeFileSync(join(work, 'play.yml'), ours);
    // This host is the play's lxc_hosts; root already, so become is su to root (the host may have no sudo).
    writeFileSync(join(work, 'hosts'), `[lxc_hosts]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3 ansible_become_method=su\n`);
    // The thin-lxc on the play's PATH is this tree's build; its root is the suite's, through the environment.
    // It notes each call, so the test knows the play ran this one and no other thin-lxc.
    mkdirSync(join(work, 'bin'));
    writeFileSync(join(work, 'bin', 'thin-lxc'), `#!/bin/sh\necho "$*" >> '${join(work, 'calls')}'\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
    Object.assign(env, {
      PATH: `${join(work, 'bin')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      THIN_LXC_ROOT: root,
      ANSIBLE_LOCAL_TEMP: join(work, 'tmp'),
      ANSIBLE_REMOTE_TEMP: join(work, 'tmp'),
      ANSIBLE_NOCOLOR: '1',
      // The play uses no facts: gathering them is most of a run's time.
      ANSIBLE_GATHERING: 'explicit',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
    });
  });

  /** One ansible-playbook run: its exit code, and the recap's counts for localhost. */
  const run = async (...extra: string[]) => {
    const ran = await sh('env', [...Object.entries(env).map(([key, value]) => `${key}=${value}`), playbook, '-i', join(work, 'hosts'), join(work, 'play.yml'), ...extra], 300_000);
    const recap = /^localhost\s+:\s+(.*)$/m.exec(ran.stdout)?.[1] ?? '';
    const counts = Object.fromEntries([...recap.matchAll(/(\w+)=(\d+)/g)].map((match) => [match[1]!, Number(match[2])]));
    return { ...ran, counts, output: `${ran.stdout}\n${ran.stderr}` };
  };
  const lxcStateOf = async (name: string) => (await sh('lxc-info', ['-n', name, '-s', '-H'])).stdout.trim();

  ansible("--check makes nothing and predicts the first run's changes, the first run creates, starts and destroys, the second reports changed=0", async () => {
    assert.is((await thinLxc(['create', old, '--base', base, '--root', root])).exitCode, 0);

    const check = await run('--check');
    assert.is(check.exitCode, 0, check.output);
    assert.is(check.counts.failed, 0, check.output);
    assert.not.ok(existsSync(join(root, web)), 'check mode made no container');
    assert.not.ok(existsSync(join('/var/lib/lxc', web)), 'check mode registered nothing');
    assert.ok(existsSync(join(root, old)), 'check mode destroyed nothing');
    assert.is(check.counts.changed, 3, `check mode says it would create, start and destroy, as the first run does: ${check.output}`);
    const calls = () => readFileSync(join(work, 'calls'), 'utf8').trim().split('\n');
    assert.equal(calls(), [
      `create ${web} --base ${base} -p ${hostPort}:80 --memory 1G --replace --json --dry-run`,
      `destroy ${old} --force --json --dry-run`,
    ], "the play ran this tree's thin-lxc");
    rmSync(join(work, 'calls'));

    const first = await run();
    assert.is(first.exitCode, 0, first.output);
    assert.is(first.counts.changed, 3, `the first run creates, starts and destroys: ${first.output}`);
    assert.is(await lxcStateOf(web), 'RUNNING');
    assert.not.ok(existsSync(join(root, old)), 'old is gone');
    assert.equal(calls(), [`create ${web} --base ${base} -p ${hostPort}:80 --memory 1G --replace --json`, `destroy ${old} --force --json`]);

    const second = await run();
    assert.is(second.exitCode, 0, second.output);
    assert.equal([second.counts.changed, second.counts.failed], [0, 0], `the second run changes nothing: ${second.output}`);
    assert.is(await lxcStateOf(web), 'RUNNING');

    assert.is((await thinLxc(['destroy', web, '--root', root, '--force'])).exitCode, 0);
  });
}

ansible.run();
