// Whether a process still runs, for pid files and lock holders.

/** False for anything that is not a positive pid: kill(0) would signal our own process group. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
