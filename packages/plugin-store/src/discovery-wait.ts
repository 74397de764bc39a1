import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * Watches the legacy plugin directories (inotify, through `fs.watch`) for lookups waiting for a
 * plugin to appear: each directory, its sub-directories (`<name>/<name>.sock`, `<name>/<name>.spec`)
 * and, for a directory that does not exist yet, its nearest existing ancestor, so that its creation
 * is seen too. Every change re-arms the watches and wakes every waiter, which then looks again.
 * The watches exist only while someone waits. Where a watch cannot be set (no inotify instances
 * left, no permission), waiters look again every `fallbackPollMs` instead.
 */
export class DirectoryWatch {
  readonly #dirs: readonly string[];
  readonly #fallbackPollMs: number;
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #wakers = new Set<() => void>();
  #waiters = 0;
  #generation = 0;
  #degraded = false;

  constructor(dirs: readonly string[], options: { fallbackPollMs: number }) {
    this.#dirs = dirs;
    this.#fallbackPollMs = options.fallbackPollMs;
  }

  /**
   * Runs `probe` until it finds something, `deadline` (`performance.now()` time) passes or `signal`
   * aborts, looking again after every change in the directories. A probe that throws (a spec file
   * caught half-written) counts as a miss until the deadline; then its error is the answer.
   */
  async probeUntil<T>(
    probe: () => Promise<T | undefined>,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<T | undefined> {
    let failure: { error: unknown } | undefined;
    let watching = false;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const seen = this.#generation;
        try {
          const found = await probe();
          failure = undefined;
          if (found !== undefined) return found;
        } catch (error) {
          failure = { error };
        }
        const left = deadline - performance.now();
        if (left <= 0) break;
        if (!watching) {
          // Watch first, then look again: nothing that appears from now on goes unseen.
          watching = true;
          this.#enter();
          continue;
        }
        await this.#changeAfter(seen, this.#degraded ? Math.min(left, this.#fallbackPollMs) : left, signal);
      }
    } finally {
      if (watching) this.#leave();
    }
    if (failure !== undefined) throw failure.error;
    return undefined;
  }

  /** Resolves once a change newer than `seen` happened, or after `ms`. */
  #changeAfter(seen: number, ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#generation !== seen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason);
      };
      const timer = setTimeout(done, ms);
      this.#wakers.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #enter(): void {
    if (this.#waiters++ === 0) this.#arm();
  }

  #leave(): void {
    if (--this.#waiters > 0) return;
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#degraded = false;
  }

  #changed(): void {
    if (this.#waiters === 0) return;
    this.#arm();
    this.#generation++;
    for (const wake of [...this.#wakers]) wake();
  }

  /**
   * Watches exactly what `#targets()` names: new sub-directories in, removed ones out. Until the
   * targets hold still, since a directory created while the watches were being set (`mkdir -p` of
   * a plugin directory) has no watch on it yet to report what happens inside.
   */
  #arm(): void {
    let wanted = this.#targets();
    for (let round = 0; round < 8; round++) {
      this.#watchExactly(wanted);
      const now = this.#targets();
      if (now.size === wanted.size && [...now].every((dir) => wanted.has(dir))) return;
      wanted = now;
    }
    this.#degraded = true; // the directories keep changing: look again on a timer as well
  }

  #watchExactly(wanted: ReadonlySet<string>): void {
    for (const [dir, watcher] of this.#watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      this.#watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (this.#watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#changed());
        watcher.on('error', () => {
          // The directory went away (or the watch broke): look again at what is there now.
          watcher.close();
          if (this.#watchers.get(dir) === watcher) this.#watchers.delete(dir);
          this.#changed();
        });
        this.#watchers.set(dir, watcher);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Gone between listing and watching: the parent's watch reports it.
        if (code !== 'ENOENT' && code !== 'ENOTDIR') this.#degraded = true;
      }
    }
  }

  #targets(): Set<string> {
    const targets = new Set<string>();
    for (const dir of this.#dirs) {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        const ancestor = nearestExistingAncestor(dir);
        if (ancestor !== undefined) targets.add(ancestor);
        continue;
      }
      targets.add(dir);
      for (const entry of entries) if (entry.isDirectory()) targets.add(path.join(dir, entry.name));
    }
    return targets;
  }
}

function nearestExistingAncestor(dir: string): string | undefined {
  for (let current = path.dirname(path.resolve(dir)); ; current = path.dirname(current)) {
    if (isDirectory(current)) return current;
    if (current === path.dirname(current)) return undefined;
  }
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}
