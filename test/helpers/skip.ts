// A test that cannot run on this machine says so out loud; in CI (THIN_LXC_REQUIRE_E2E=1) that is a failure.
import type { Test } from 'uvu';

/**
 * True when `ok`. Otherwise prints why `what` is skipped and counts it as skipped in `suite`, or throws
 * where skipping is not allowed (CI), so that nothing passes by not running.
 */
export function skipUnless(suite: Test, what: string, ok: boolean, reason: string): boolean {
  if (ok) return true;
  if (process.env.THIN_LXC_REQUIRE_E2E === '1') throw new Error(`${what} cannot run here (${reason}), and THIN_LXC_REQUIRE_E2E=1 forbids skipping`);
  console.log(`SKIPPED ${what}: ${reason}`);
  suite.skip(what, () => {});
  return false;
}
