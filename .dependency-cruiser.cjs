// The cycle check of `pnpm lint`: no import cycle anywhere in the workspace's sources, within a
// package or across packages (type-only imports count: a cycle of types is still a knot a reader
// has to untie). Workspace packages resolve to their sources through the `@berth/source` condition.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: split the module that both sides need, or invert one arrow.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    includeOnly: '^(packages|apps)/[^/]+/(src|test)/',
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@berth/source', 'import', 'types', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.json'],
    },
  },
};
