import { defineProject } from 'vitest/config';

const conditions = ['@berth/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  // Integration tests start real daemons and run the docker CLI: allow for a loaded machine.
  test: { name: 'daemon', testTimeout: 30_000, hookTimeout: 30_000 },
});
