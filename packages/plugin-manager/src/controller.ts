import { RestartBackoff, type RestartPolicy } from './backoff.js';
import type { PersistedExtras } from './plugin-dir.js';

/** One run of a plugin's process, from create (or re-attach) to its exit. */
export interface Run {
  readonly startedAt: number;
  /** Settles when the run has exited (or was given up). */
  readonly exited: Promise<void>;
  /** Its socket answered: the plugin is running. */
  readonly ready: boolean;
}

interface RunState extends Run {
  ready: boolean;
  readonly markExited: () => void;
}

/**
 * The manager's control over one plugin (moby's `controller`): its current run, whether it is to
 * be started again when that run exits, the pending restart and its back-off, and what its
 * `config.json` keeps besides the plugin object.
 */
export class Controller {
  /** Deadline given to `enable` (`--timeout`), in seconds; 0: the manager's defaults. */
  timeoutSeconds = 0;
  readonly backoff: RestartBackoff;
  /** moby's other fields of `config.json` (`Config`, `Blobsums`, `Manifest` digests, …), kept as found. */
  extras: PersistedExtras;
  #run: RunState | undefined;
  #restartOnExit = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(policy: RestartPolicy, extras: PersistedExtras = {}) {
    this.backoff = new RestartBackoff(policy);
    this.extras = extras;
  }

  /** The current run; undefined while the plugin's process does not run (or is not known to). */
  get run(): Run | undefined {
    return this.#run;
  }

  /** Whether an exit of the current run is to be followed by a restart: it is enabled and we started it. */
  get restartOnExit(): boolean {
    return this.#restartOnExit;
  }

  /** A new run begins (a create or a re-attach); exits of the old one no longer restart anything. */
  beginRun(): Run {
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    this.#restartOnExit = false;
    this.#run = { startedAt: Date.now(), exited, markExited, ready: false };
    return this.#run;
  }

  /** The run's socket answered: it runs, and an exit from now on is a crash to restart after. */
  markReady(run: Run): void {
    const state = run as RunState;
    state.ready = true;
    if (this.#run === state) this.#restartOnExit = true;
  }

  /** A stop is under way: the exit it causes is not a crash. */
  expectExit(): void {
    this.#restartOnExit = false;
  }

  /**
   * The run is over (it exited, or is known to be gone): wakes whoever waits for its exit. True
   * when it was the current run and no stop was under way: a crash, to restart after.
   */
  endRun(run: Run): boolean {
    const crashed = this.#run === run && this.#restartOnExit;
    if (this.#run === run) {
      this.#run = undefined;
      this.#restartOnExit = false;
    }
    (run as RunState).markExited();
    return crashed;
  }

  /** The run could not be created: forgotten, nobody waits for it. */
  dropRun(run: Run): void {
    if (this.#run === run) this.#run = undefined;
  }

  /** Calls `restart` after `delayMs`, replacing any restart already pending. */
  scheduleRestart(delayMs: number, restart: () => void): void {
    this.cancelRestart();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      restart();
    }, delayMs);
    // Pending restarts must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  cancelRestart(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
