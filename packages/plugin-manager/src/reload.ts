import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@berth/logger';
import type { ManagedPlugin } from './contracts.js';
import { errorMessage } from './errors.js';
import type { ImageCollector } from './images.js';
import { FULL_ID, loadPluginFile, recoverUpgrade, REMOVING_SUFFIX, tmpDir } from './plugin-dir.js';
import type { PluginTable } from './plugin-table.js';
import type { PluginRunner } from './runner.js';

export interface ReloadParts<P extends ManagedPlugin> {
  readonly plugins: PluginTable<P>;
  readonly runner: PluginRunner<P>;
  readonly images: ImageCollector;
  readonly execRoot: string;
  readonly logger: Logger;
}

/**
 * moby's `reload`: what crashes left is cleared or finished (extractions in `tmp/`, interrupted
 * blob writes, upgrades, removals), every `<id>/config.json` is loaded into the store, and plugins
 * that were enabled are started again — or, with live restore, re-attached when still running —
 * in parallel. A plugin that fails is logged, stays enabled and is retried in the background.
 */
export async function reloadPlugins<P extends ManagedPlugin>(parts: ReloadParts<P>, signal: AbortSignal | undefined): Promise<void> {
  const { plugins, logger } = parts;
  const root = plugins.root;
  for (const dir of [root, parts.execRoot, tmpDir(root)]) await mkdir(dir, { recursive: true, mode: 0o700 });
  // Creates interrupted by a crash leave their half-extracted rootfs here.
  for (const leftover of await readdir(tmpDir(root))) {
    await rm(path.join(tmpDir(root), leftover), { recursive: true, force: true });
  }
  await parts.images.removeIngests();
  const loaded = new Map<string, P>();
  for (const entry of await readdir(root)) {
    signal?.throwIfAborted();
    if (FULL_ID.test(entry)) {
      const plugin = await load(parts, entry);
      if (plugin !== undefined) loaded.set(entry, plugin);
    } else if (entry.endsWith(REMOVING_SUFFIX) && FULL_ID.test(entry.slice(0, -REMOVING_SUFFIX.length))) {
      // A removal that was interrupted: finish it (moby tries, with a path relative to its cwd).
      await rm(path.join(root, entry), { recursive: true, force: true }).catch((err: unknown) =>
        logger.warn('error while attempting to clean up previously removed plugin', { id: entry, error: errorMessage(err) }),
      );
    }
  }
  plugins.store.setAll(loaded);
  await Promise.all([...loaded.values()].map((plugin) => restorePlugin(parts, plugin, signal)));
}

/** One plugin directory: its interrupted upgrade settled, then its `config.json` read; undefined when unreadable. */
async function load<P extends ManagedPlugin>(parts: ReloadParts<P>, id: string): Promise<P | undefined> {
  const { plugins, logger } = parts;
  try {
    const recovered = await recoverUpgrade(plugins.root, id);
    if (recovered !== 'none') logger.warn(`an interrupted plugin upgrade was ${recovered === 'completed' ? 'completed' : 'rolled back'}`, { id });
  } catch (err) {
    logger.error('error recovering an interrupted plugin upgrade', { id, error: errorMessage(err) });
  }
  try {
    const { object, extras } = await loadPluginFile(plugins.root, id);
    return plugins.track(object, extras);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      logger.warn('missing plugin config, skipping: this may be caused due to a failed remove and requires manual cleanup.', { id });
    } else {
      logger.error('error loading plugin, skipping', { id, error: errorMessage(err) });
    }
    return undefined;
  }
}

async function restorePlugin<P extends ManagedPlugin>(parts: ReloadParts<P>, plugin: P, signal: AbortSignal | undefined): Promise<void> {
  const { plugins, runner } = parts;
  const c = plugins.controller(plugin.id);
  if (c === undefined) return;
  try {
    await plugins.withLock(plugin, signal, async () => {
      await runner.preparePropagatedMount(plugin);
      if (plugin.enabled) await runner.restore(plugin, c, signal);
      await plugins.save(plugin, c);
    });
  } catch (err) {
    if (signal?.aborted === true) throw err;
    parts.logger.error('failed to restore plugin', { plugin: plugin.id, error: errorMessage(err) });
    if (plugin.enabled) runner.scheduleRestart(plugin, c, c.backoff.next());
  }
}
