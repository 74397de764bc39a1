import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

/** The workspace packages a package depends on, itself included, in no particular order. */
async function withWorkspaceDeps(name: string, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const manifest = JSON.parse(await readFile(path.join(root, 'packages', name, 'package.json'), 'utf8'));
  for (const [dep, spec] of Object.entries<string>(manifest.dependencies ?? {})) {
    if (spec.startsWith('workspace:')) await withWorkspaceDeps(dep.replace('@berth/', ''), seen);
  }
  return seen;
}

/**
 * Packs a package and the workspace packages it depends on (as they would be published), then
 * installs the tarballs with plain npm into an empty project. Returns that project's directory.
 */
export async function installPacked(...names: string[]): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), `berth-pack-${names.join('-')}-`));
  const tarballs: string[] = [];
  const packages = new Set<string>();
  for (const name of names) await withWorkspaceDeps(name, packages);
  for (const pkg of packages) {
    const dir = path.join(root, 'packages', pkg);
    await readdir(path.join(dir, 'dist')).catch(() => {
      throw new Error(`packages/${pkg}/dist is missing: build the workspace first (pnpm build)`);
    });
    const before = new Set(await readdir(work));
    await run('pnpm', ['pack', '--pack-destination', work], { cwd: dir });
    const created = (await readdir(work)).filter((f) => f.endsWith('.tgz') && !before.has(f));
    tarballs.push(...created.map((f) => path.join(work, f)));
  }
  const project = path.join(work, 'project');
  await run('mkdir', ['-p', project]);
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const env = { ...process.env };
  if (!env.npm_config_nodedir) env.npm_config_nodedir = '/usr';
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], {
    cwd: project,
    env,
    maxBuffer: 64 << 20,
  });
  return project;
}

export async function runScript(project: string, source: string): Promise<string> {
  const file = path.join(project, 'check.mjs');
  await writeFile(file, source);
  const { stdout } = await run(process.execPath, [file], { cwd: project });
  return stdout.trim();
}

export async function hasBinary(name: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}
