// Precompiles templates/config.hbs into dist/src/default-template.js (see src/default-template.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import Handlebars from 'handlebars';

const spec = Handlebars.precompile(readFileSync('templates/config.hbs', 'utf8'), { noEscape: true });
writeFileSync(
  'dist/src/default-template.js',
  `// Generated from templates/config.hbs by scripts/precompile-template.mjs.\nexport const DEFAULT_TEMPLATE_SPEC = ${spec};\n`,
);
