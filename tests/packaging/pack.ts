import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

/** Every workspace package's directory, by its name (`@berth/volume-drivers`, `@berth/daemon`). */
let workspace: Promise<Map<string, string>> | undefined;
function workspaceDirs(): Promise<Map<string, string>> {
  workspace ??= (async () => {
    const dirs = new Map<string, string>();
    for (const parent of ['packages', 'apps']) {
      for (const entry of await readdir(path.join(root, parent))) {
        const dir = path.join(root, parent, entry);
        const manifest = await readFile(path.join(dir, 'package.json'), 'utf8').catch(() => undefined);
        if (manifest !== undefined) dirs.set(JSON.parse(manifest).name, dir);
      }
    }
    return dirs;
  })();
  return workspace;
}

/** The workspace packages a package depends on, itself included, in no particular order. */
async function withWorkspaceDeps(name: string, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const dir = (await workspaceDirs()).get(name);
  if (dir === undefined) throw new Error(`${name} is not a workspace package`);
  const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
  for (const [dep, spec] of Object.entries<string>(manifest.dependencies ?? {})) {
    if (spec.startsWith('workspace:')) await withWorkspaceDeps(dep, seen);
  }
  return seen;
}

/** `@berth/<name>` for a short name (`volume-drivers`, `daemon`). */
const fullName = (name: string): string => (name.startsWith('@') ? name : `@berth/${name}`);

/**
 * Packs packages and the workspace packages they depend on, as they would be published (`pnpm
 * pack`: `workspace:^` becomes the version), into `work`. Returns the tarballs by package name.
 */
export async function packWithDeps(work: string, ...names: string[]): Promise<Map<string, string>> {
  const packages = new Set<string>();
  for (const name of names) await withWorkspaceDeps(fullName(name), packages);
  const tarballs = new Map<string, string>();
  for (const pkg of packages) {
    const dir = (await workspaceDirs()).get(pkg) as string;
    await readdir(path.join(dir, 'dist')).catch(() => {
      throw new Error(`${path.relative(root, dir)}/dist is missing: build the workspace first (pnpm build)`);
    });
    const before = new Set(await readdir(work));
    await run('pnpm', ['pack', '--pack-destination', work], { cwd: dir });
    const created = (await readdir(work)).filter((f) => f.endsWith('.tgz') && !before.has(f));
    if (created.length !== 1) throw new Error(`pnpm pack of ${pkg} made ${created.length} tarballs`);
    tarballs.set(pkg, path.join(work, created[0] as string));
  }
  return tarballs;
}

/** npm with the machine's Node headers for native builds (better-sqlite3), as bootstrap.sh sets it. */
export function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (!env.npm_config_nodedir) env.npm_config_nodedir = '/usr';
  return env;
}

/**
 * Packs a package and the workspace packages it depends on (as they would be published), then
 * installs the tarballs with plain npm into an empty project. Returns that project's directory.
 */
export async function installPacked(...names: string[]): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), `berth-pack-${names.join('-')}-`));
  const tarballs = await packWithDeps(work, ...names);
  const project = path.join(work, 'project');
  await run('mkdir', ['-p', project]);
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs.values()], {
    cwd: project,
    env: npmEnv(),
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
