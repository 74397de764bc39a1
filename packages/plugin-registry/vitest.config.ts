import { defineProject } from 'vitest/config';

const conditions = ['@berth/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  // The real-registry tests push and pull tens of MiB; room for a loaded CI machine.
  test: { name: 'plugin-registry', testTimeout: 30_000, hookTimeout: 30_000 },
});
