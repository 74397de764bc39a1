import { defineProject } from 'vitest/config';

const conditions = ['@berth/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  // A real etcd cluster: leases expire in seconds, and the machine may be loaded.
  test: { name: 'volume-cluster-etcd', testTimeout: 30_000, hookTimeout: 60_000 },
});
