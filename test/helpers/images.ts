// --disk images in end-to-end tests: which loop devices hold one, and holding one read-only as another reader would.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { execa } from 'execa';

/** The loop devices whose file is `image` (as the kernel names it: its real path), from the kernel's own list. */
export function loopsOf(image: string): string[] {
  return readdirSync('/sys/block').filter((device) => {
    try {
      return device.startsWith('loop') && readFileSync(`/sys/block/${device}/loop/backing_file`, 'utf8').trim() === image;
    } catch {
      return false;
    }
  });
}

/**
 * A read-only mount of `image` at `point` (made here) in a mount namespace of its own, held until release(): what a
 * diff holds, a stop's post-stop hook not done yet, or a reader outside thin-lxc (a mount by hand) makes.
 */
export async function holdImageReadOnly(image: string, point: string): Promise<{ release(): Promise<void> }> {
  mkdirSync(point);
  const hold = execa('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t ext4 -o loop,ro "$1" "$2" && echo held && read _', 'sh', image, point], { reject: false, stdin: 'pipe' });
  await new Promise<void>((resolve, reject) => {
    hold.stdout!.on('data', (data: Buffer) => (data.toString().includes('held') ? resolve() : undefined));
    void hold.then((result) => reject(new Error(`could not hold ${image}: ${String(result.stderr)}`)));
  });
  return {
    async release() {
      hold.stdin!.end();
      await hold;
    },
  };
}
