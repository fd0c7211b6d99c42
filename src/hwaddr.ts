// MAC addresses for thin containers' network devices.
import { closeSync, openSync, readSync } from 'node:fs';

/** The kernel's random bytes, read directly: loading node:crypto for three bytes costs create ~5 ms. */
function urandom(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** 00:16:3e is the prefix LXC itself uses for the addresses it makes up. */
export function randomMac(random: (size: number) => Uint8Array = urandom): string {
  const bytes = [...random(3)].map((byte) => byte.toString(16).padStart(2, '0'));
  return ['00', '16', '3e', ...bytes].join(':');
}

/** A new address for each network index, none of them in `taken`. */
export function assignMacs(indexes: readonly number[], taken: ReadonlySet<string>, random?: (size: number) => Uint8Array): Record<string, string> {
  const used = new Set(taken);
  const assigned: Record<string, string> = {};
  for (const index of indexes) {
    let mac = randomMac(random);
    for (let attempt = 0; used.has(mac) && attempt < 100; attempt++) mac = randomMac(random);
    used.add(mac);
    assigned[String(index)] = mac;
  }
  return assigned;
}
