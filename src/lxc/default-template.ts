// The default template, precompiled: scripts/bundle.mjs puts templates/config.hbs here, compiled, when it
// builds the command, so that a create renders it with Handlebars' small runtime and not its compiler (~40 ms).
// Where it is not built in (the tests run tsc's output), render.ts compiles templates/config.hbs instead.
export const DEFAULT_TEMPLATE_SPEC: object | null = null;
