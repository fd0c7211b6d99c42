import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { translateLegacyArgs } from '../../../src/cli/legacy-argv.js';

const split = (line: string) => line.split(' ');

test("the original README's create line becomes today's create", () => {
  const original = '-a create -b /var/lib/lxc/baseCN -id CONTAINER_ID -n myContainer -ip 10.0.3.67 -p 3000:3010 -m /app/myApp:/app,app/myApp/log:/log';
  assert.equal(
    translateLegacyArgs(split(original)),
    split('create -b /var/lib/lxc/baseCN --id CONTAINER_ID -n myContainer --ip 10.0.3.67 -p 3000:3010 -m /app/myApp:/app,app/myApp/log:/log'),
  );
});

test('the long form of the original (-name, -bm) is accepted too', () => {
  assert.equal(
    translateLegacyArgs(split('-a create -b /var/lib/lxc/cont -id x -name web -ip 10.0.3.9 -bm /a:/b')),
    split('create -b /var/lib/lxc/cont --id x --name web --ip 10.0.3.9 --mount /a:/b'),
  );
});

test('-a destroy -id ID targets the id', () => {
  assert.equal(translateLegacyArgs(split('-a destroy -id CONTAINER_ID')), split('destroy CONTAINER_ID'));
});

test('-a reload', () => {
  assert.equal(translateLegacyArgs(split('-a reload')), ['reload']);
});

test("today's command lines pass through unchanged", () => {
  const line = split('create web --base base1 --id w1 -p 80:80 --root /tmp/x');
  assert.equal(translateLegacyArgs(line), line);
});

test.run();
