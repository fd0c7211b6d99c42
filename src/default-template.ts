// The default template, precompiled at build time (scripts/precompile-template.mjs replaces this module's
// output), so that creating with it needs only Handlebars' small runtime, not its compiler.
export const DEFAULT_TEMPLATE_SPEC: object | null = null;
