import { defineProject } from 'vitest/config';

const conditions = ['@berth/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: { name: 'host' },
});
