import { RestartBackoff, type RestartPolicy } from './backoff.js';
import type { PersistedExtras } from './plugin-dir.js';

/** One run of a plugin's process, from create (or re-attach) to its exit. */
export interface Run {
  readonly startedAt: number;
  readonly exited: Promise<void>;
  readonly markExited: () => void;
  /** Its socket answered. */
  ready: boolean;
}

/** The manager's control over one plugin (moby's `controller`). */
export class Controller {
  run: Run | undefined;
  /** Start it again when the current run exits: it is enabled and was started by us. */
  restart = false;
  timeoutSeconds = 0;
  timer: NodeJS.Timeout | undefined;
  readonly backoff: RestartBackoff;
  extras: PersistedExtras;

  constructor(policy: RestartPolicy, extras: PersistedExtras = {}) {
    this.backoff = new RestartBackoff(policy);
    this.extras = extras;
  }

  newRun(): Run {
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    this.run = { startedAt: Date.now(), exited, markExited, ready: false };
    return this.run;
  }

  cancelRestart(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
