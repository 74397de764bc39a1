// Bundles berthd (the tsc output under dist/, and the workspace packages' dist/) into dist/main.js, so
// that the daemon starts by compiling one module instead of resolving and linking about a hundred.
// What berthd loads only for managed plugins or registries (containerd's gRPC client, the registry
// client) goes into chunks under dist/chunks/, loaded on first use as before; code both need is in a
// shared chunk, so every module exists once. better-sqlite3 (a native addon) and the etcd cluster
// store (etcd3 reads files beside its modules) stay packages.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));

const result = await build({
  entryPoints: { main: join(dist, 'main.js') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: dist,
  chunkNames: 'chunks/[name]-[hash]',
  // better-sqlite3 is a native addon; the etcd cluster store (loaded only with --cluster-store)
  // brings etcd3, which reads its .proto files from beside its own modules: both stay packages.
  external: ['better-sqlite3', '@berth/volume-cluster-etcd'],
  // The CommonJS packages bundled in (tar-stream, gRPC, undici) call require() for Node's modules.
  banner: { js: "import { createRequire as __berthdRequire } from 'node:module'; const require = __berthdRequire(import.meta.url);" },
  // The version is read from package.json at build time: chunks do not sit beside it.
  define: { BERTHD_BUNDLED_VERSION: JSON.stringify(version) },
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  // dist/main.js is both the input (tsc's) and the output: written once everything is read.
  write: false,
});
await rm(join(dist, 'chunks'), { recursive: true, force: true });
for (const file of result.outputFiles) {
  await mkdir(dirname(file.path), { recursive: true });
  await writeFile(file.path, file.contents);
}
