// Paths the tests share: the repository, the built CLI and the fixtures (tests run from dist/test).
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** The CLI as installed: the bundle that package.json's bin names. */
export const CLI = join(REPO, 'dist/bin/cli.js');
export const FIXTURES = join(REPO, 'test/fixtures');
export const fixture = (name: string) => join(FIXTURES, name);
