import { readdirSync, statSync, type Dirent } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { system } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import { goField, jsonTypeName } from '@berth/gocompat';
import { addressScheme } from './plugin-address.js';
import type { TlsConfig } from './plugin-client.js';

/** Where legacy (v1) plugins are looked for. */
export interface LegacyDirs {
  /** Directories holding `<name>.sock` or `<name>/<name>.sock`, searched first, in order. */
  readonly socketDirs: readonly string[];
  /** Directories holding `.spec` and `.json` files, in priority order. */
  readonly specDirs: readonly string[];
}

export const DEFAULT_SOCKET_DIRS: readonly string[] = ['/run/docker/plugins'];
export const DEFAULT_SPEC_DIRS: readonly string[] = ['/etc/docker/plugins', '/usr/lib/docker/plugins'];

/**
 * moby's directories; under rootlesskit (`ROOTLESSKIT_STATE_DIR` set) the spec directories move to
 * `$XDG_CONFIG_HOME/docker/plugins` (else `$HOME/.config/docker/plugins`) and
 * `$HOME/.local/lib/docker/plugins`, each falling back to the system one without a home.
 */
export function defaultLegacyDirs(env: NodeJS.ProcessEnv = process.env): LegacyDirs {
  if (env.ROOTLESSKIT_STATE_DIR === undefined || env.ROOTLESSKIT_STATE_DIR === '') {
    return { socketDirs: DEFAULT_SOCKET_DIRS, specDirs: DEFAULT_SPEC_DIRS };
  }
  const home = env.HOME ?? '';
  const configHome = env.XDG_CONFIG_HOME || (home === '' ? '' : path.join(home, '.config'));
  return {
    socketDirs: DEFAULT_SOCKET_DIRS,
    specDirs: [
      configHome === '' ? '/etc/docker/plugins' : path.join(configHome, 'docker/plugins'),
      home === '' ? '/usr/lib/docker/plugins' : path.join(home, '.local/lib/docker/plugins'),
    ],
  };
}

/** A legacy plugin as discovery found it, before anyone talked to it. */
export interface LegacyPluginSpec {
  readonly name: string;
  /** `unix:///…`, `tcp://…`, `http://…` or `https://…`. */
  readonly addr: string;
  readonly tls: TlsConfig | undefined;
  /** The socket or spec file the plugin was found through. */
  readonly source: string;
}

const SKIP_VERIFY: TlsConfig = { insecureSkipVerify: true };

/**
 * Looks `name` up as moby's `LocalRegistry.Plugin` does: `<sock>/<name>.sock`,
 * `<sock>/<name>/<name>.sock` (sockets only), then per spec directory `<name>.spec`,
 * `<name>/<name>.spec`, `<name>.json`, `<name>/<name>.json`. `undefined` when none exists; rejects
 * when the first spec file found cannot be used. The candidates are stat'ed in place, as the scan
 * reads the directories: ten thread-pool round trips one after the other cost far more than the
 * calls themselves, and an unknown driver tries them all.
 */
export async function findLegacyPlugin(name: string, dirs: LegacyDirs): Promise<LegacyPluginSpec | undefined> {
  if (!isPlainName(name)) return undefined;
  for (const dir of dirs.socketDirs) {
    for (const candidate of candidates(dir, name, '.sock')) {
      if (statQuietly(candidate)?.isSocket() === true) {
        return { name, addr: `unix://${candidate}`, tls: SKIP_VERIFY, source: candidate };
      }
    }
  }
  for (const dir of dirs.specDirs) {
    for (const candidate of [...candidates(dir, name, '.spec'), ...candidates(dir, name, '.json')]) {
      if (statQuietly(candidate)?.isFile() !== true) continue;
      return candidate.endsWith('.json') ? readJsonSpec(name, candidate) : readSpec(name, candidate);
    }
  }
  return undefined;
}

/**
 * Whether `name` can name a legacy plugin: it is a file name, so nothing that could reach outside
 * the plugin directories (moby joins whatever the API caller sent, `../` included).
 */
export function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

function candidates(dir: string, name: string, ext: string): string[] {
  return [path.join(dir, name + ext), path.join(dir, name, name + ext)];
}

/** A `.spec` file: one URL, surrounding whitespace ignored. */
async function readSpec(name: string, file: string): Promise<LegacyPluginSpec> {
  const addr = (await readFile(file, 'utf8')).trim();
  if (addressScheme(addr) === undefined) throw system('Unknown protocol');
  return { name, addr, tls: SKIP_VERIFY, source: file };
}

/** A `.json` file: `{"Name", "Addr", "TLSConfig": {...}}`, decoded with Go's rules (`Name` is ignored). */
async function readJsonSpec(name: string, file: string): Promise<LegacyPluginSpec> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw system(`${file}: invalid JSON: ${err.message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw system(`${file}: json: cannot unmarshal ${jsonTypeName(doc)} into Go value of type plugins.Plugin`);
  }
  const addr = optional(file, doc, 'Addr', 'Plugin', 'string') ?? '';
  const tlsDoc = goField(doc, 'TLSConfig');
  if (tlsDoc === undefined || tlsDoc === null) return { name, addr, tls: undefined, source: file };
  if (typeof tlsDoc !== 'object' || Array.isArray(tlsDoc)) {
    throw system(
      `${file}: json: cannot unmarshal ${jsonTypeName(tlsDoc)} into Go struct field Plugin.TLSConfig of type tlsconfig.Options`,
    );
  }
  const caFile = optional(file, tlsDoc, 'CAFile', 'Options', 'string') ?? '';
  const certFile = optional(file, tlsDoc, 'CertFile', 'Options', 'string') ?? '';
  const keyFile = optional(file, tlsDoc, 'KeyFile', 'Options', 'string') ?? '';
  // Without a CA there is nothing to verify against: moby skips verification then.
  const skip = optional(file, tlsDoc, 'InsecureSkipVerify', 'Options', 'boolean') === true;
  const insecureSkipVerify = caFile === '' || skip;
  return { name, addr, tls: { caFile, certFile, keyFile, insecureSkipVerify }, source: file };
}

function optional<T extends 'string' | 'boolean'>(
  file: string,
  doc: object,
  field: string,
  struct: string,
  type: T,
): (T extends 'string' ? string : boolean) | undefined {
  const value = goField(doc, field);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) {
    const goType = type === 'string' ? 'string' : 'bool';
    throw system(
      `${file}: json: cannot unmarshal ${jsonTypeName(value)} into Go struct field ${struct}.${field} of type ${goType}`,
    );
  }
  return value as T extends 'string' ? string : boolean;
}

/**
 * Every legacy plugin name, as moby's `Scan`: sockets in the socket directories (name without
 * extension) and sub-directories `<d>` holding a socket `<d>/<d>.sock`; `.spec`/`.json` files in the
 * spec directories and sub-directories `<d>` holding `<d>.spec` or `<d>.json`. Anything else in a
 * sub-directory is ignored, so managed plugins' exec directories (`/run/docker/plugins/<id>/`) are
 * not taken for plugins. Missing or unreadable directories are skipped. Names are unique.
 *
 * The directories are read in place (synchronously): they hold a handful of entries, a scan runs
 * on every volume create without a driver and every list, and a thread-pool round trip per
 * directory costs far more than the `getdents` itself. Nothing is cached, so a plugin that appears
 * is seen by the next scan, as in moby.
 */
export async function scanLegacyPlugins(dirs: LegacyDirs, logger: Logger = noopLogger): Promise<string[]> {
  const names = new Set<string>();
  for (const dir of dirs.socketDirs) {
    for (const entry of listDir(dir, logger)) {
      if (entry.isSocket()) {
        names.add(stripExtension(entry.name));
      } else if (entry.isDirectory()) {
        const inner = path.join(dir, entry.name, `${entry.name}.sock`);
        if (statQuietly(inner)?.isSocket() === true) names.add(entry.name);
      }
    }
  }
  for (const dir of dirs.specDirs) {
    for (const entry of listDir(dir, logger)) {
      if (entry.isDirectory()) {
        const inner = listDir(path.join(dir, entry.name), logger);
        const spec = inner.find((e) => !e.isDirectory() && isSpecFile(e.name) && stripExtension(e.name) === entry.name);
        if (spec !== undefined) names.add(entry.name);
      } else if (isSpecFile(entry.name)) {
        names.add(stripExtension(entry.name));
      }
    }
  }
  return [...names];
}

/** A path's stat, following symlinks; `undefined` when it cannot be had. */
function statQuietly(file: string): ReturnType<typeof statSync> {
  try {
    return statSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

function listDir(dir: string, logger: Logger): Dirent[] {
  try {
    const entries = readdirSync(dir, { withFileTypes: true });
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    if (code === 'EACCES' || code === 'EPERM') {
      logger.warn('cannot read plugin directory; skipping it', { dir, error: (err as Error).message });
      return [];
    }
    throw system(`error reading dir entries: ${(err as Error).message}`, { cause: err });
  }
}

function isSpecFile(name: string): boolean {
  const ext = path.extname(name);
  return ext === '.spec' || ext === '.json';
}

function stripExtension(name: string): string {
  return name.slice(0, name.length - path.extname(name).length);
}
