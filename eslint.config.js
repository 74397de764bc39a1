// `pnpm lint` (turbo runs `eslint .` in every package, then the cycle check). The rules keep what
// DESIGN.md asks of the code; a rule that is in the way is changed here in review, not disabled in
// a file.
import tseslint from 'typescript-eslint';
import floors from './scripts/eslint-plugin-floors.mjs';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/vitest.config.ts', 'bench/**', 'tests/**', 'scripts/**', 'test-results/**'],
  },
  {
    files: ['packages/**/*.ts', 'apps/**/*.ts'],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, floors },
    rules: {
      // The floors: imports only go down, and only through a package's exports.
      'floors/no-upward-import': 'error',
      'floors/no-deep-import': 'error',
      // A promise nobody awaits loses its error; `void` says it is meant.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    // Libraries log through the `Logger` they are given, never to the console.
    files: ['packages/*/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: { 'no-console': 'error' },
  },
);
