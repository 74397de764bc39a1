import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { system } from '@berth/errdefs';
import { toPlain, unmarshalValue, type JsonValue } from '@berth/gocompat';
import { decodePluginObject, type PluginObject } from '@berth/plugin-store';

// moby's on-disk layout under the manager root (`<data-root>/plugins`):
//   <id>/config.json        {"plugin": <Engine API object>, "Rootfs": "<abs path>", ...}, 0600
//   <id>/rootfs/            the plugin's root filesystem
//   <id>/propagated-mount/  host side of Config.PropagatedMount
//   <id>-removing           a removal in progress (or interrupted)
//   <id>/rootfs-old/        the previous rootfs during an upgrade (`reload` finishes or undoes it)
//   <id>/config.json.upgrade the upgraded plugin's config, written before the rootfs swap; renaming
//                           it over config.json is the upgrade's commit point
//   tmp/.rootfs*            rootfs being extracted by a create or a pull
//   storage/                the content store of pulled and pushed plugin images (blobs/sha256/<hex>)

export const CONFIG_FILE = 'config.json';
export const FULL_ID = /^[a-f0-9]{64}$/;
export const REMOVING_SUFFIX = '-removing';

export const pluginDir = (root: string, id: string): string => path.join(root, id);
export const rootfsDir = (root: string, id: string): string => path.join(root, id, 'rootfs');
export const propagatedMountDir = (root: string, id: string): string => path.join(root, id, 'propagated-mount');
export const tmpDir = (root: string): string => path.join(root, 'tmp');
export const storageDir = (root: string): string => path.join(root, 'storage');
export const oldRootfsDir = (root: string, id: string): string => path.join(root, id, 'rootfs-old');
export const UPGRADE_CONFIG_FILE = `${CONFIG_FILE}.upgrade`;

/** A new plugin ID: 64 random hex digits, like moby's `stringid.GenerateRandomID`. */
export function newPluginId(): string {
  return randomBytes(32).toString('hex');
}

/** What a plugin's `config.json` holds besides the object: moby's digests, kept as found. */
export type PersistedExtras = Record<string, unknown>;

export interface LoadedPlugin {
  object: PluginObject;
  extras: PersistedExtras;
}

/** Reads `<root>/<id>/config.json`; a missing file keeps its `ENOENT` code (moby skips it with a warning). */
export async function loadPluginFile(root: string, id: string): Promise<LoadedPlugin> {
  const file = path.join(pluginDir(root, id), CONFIG_FILE);
  const bytes = await readFile(file);
  let top: JsonValue;
  try {
    top = unmarshalValue(bytes);
  } catch (err) {
    throw system(`error decoding ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (top.kind !== 'object') throw system(`error decoding ${file}: not a JSON object`);
  const extras: PersistedExtras = {};
  let raw: JsonValue = { kind: 'null' };
  for (const [key, value] of top.entries) {
    if (key.toLowerCase() === 'plugin') raw = value;
    else if (key.toLowerCase() !== 'rootfs') extras[key] = toPlain(value);
  }
  let object: PluginObject;
  try {
    object = decodePluginObject(raw);
  } catch (err) {
    throw system(`error decoding ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (object.Id !== id) throw system(`error decoding ${file}: it belongs to plugin "${object.Id ?? ''}"`);
  return { object, extras };
}

/**
 * Writes `<root>/<id>/config.json` atomically (temp file, fsync, rename) with mode 0600, in moby's
 * format so that a Docker daemon can read it back.
 */
export async function savePluginFile(
  root: string,
  object: PluginObject,
  extras: PersistedExtras = {},
  fileName: string = CONFIG_FILE,
): Promise<void> {
  const id = object.Id ?? '';
  const dir = pluginDir(root, id);
  const document = {
    Config: '',
    Blobsums: null,
    Manifest: '',
    SwarmServiceID: '',
    ...extras,
    plugin: object,
    Rootfs: rootfsDir(root, id),
  };
  const temp = path.join(dir, `.${CONFIG_FILE}.${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(JSON.stringify(document));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path.join(dir, fileName));
  } catch (err) {
    await rm(temp, { force: true });
    throw system(`failed to write atomically plugin json: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * moby's `atomicRemoveAll`: rename `dir` to `dir-removing`, then delete that. An interrupted removal
 * leaves only `-removing` behind, which `reload` deletes; never a half-deleted plugin that loads.
 */
export async function atomicRemoveAll(dir: string): Promise<void> {
  const renamed = dir + REMOVING_SUFFIX;
  try {
    await rename(dir, renamed);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') {
      // An earlier removal failed half way: finish it, then rename again.
      try {
        await rm(renamed, { recursive: true, force: true });
      } catch (rmErr) {
        throw system(`rename target already exists and could not be removed: ${(rmErr as Error).message}`, { cause: rmErr });
      }
      if (!(await exists(dir))) return;
      try {
        await rename(dir, renamed);
      } catch (again) {
        throw system(`failed to rename dir for atomic removal: ${(again as Error).message}`, { cause: again });
      }
    } else if (code !== 'ENOENT') {
      throw system(`failed to rename dir for atomic removal: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    await rm(renamed, { recursive: true, force: true });
  } catch (err) {
    await rename(renamed, dir).catch(() => undefined);
    throw system(`error removing plugin data: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Finishes or undoes an upgrade a crash interrupted (see `upgradeRootfs`), before the plugin is
 * loaded: with `config.json.upgrade` still there the commit point was not reached, so the new
 * rootfs (if it was moved in) goes and `rootfs-old` comes back; without it the upgrade committed
 * and only `rootfs-old` is left to delete. Returns what it did, for the log.
 */
export async function recoverUpgrade(root: string, id: string): Promise<'none' | 'rolled-back' | 'completed'> {
  const staged = path.join(pluginDir(root, id), UPGRADE_CONFIG_FILE);
  const old = oldRootfsDir(root, id);
  const hasStaged = await exists(staged);
  const hasOld = await exists(old);
  if (!hasStaged && !hasOld) return 'none';
  if (hasStaged) {
    if (hasOld) {
      await rm(rootfsDir(root, id), { recursive: true, force: true });
      await rename(old, rootfsDir(root, id));
    }
    await rm(staged, { force: true });
    return 'rolled-back';
  }
  await rm(old, { recursive: true, force: true });
  return 'completed';
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
