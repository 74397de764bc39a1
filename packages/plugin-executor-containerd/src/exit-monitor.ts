import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@berth/logger';
import type { ContainerdClient } from './client.js';
import { unpackTaskExit, type TaskExit } from './proto/messages.js';

export interface ExitMonitorOptions {
  client: ContainerdClient;
  logger: Logger;
  onExit: (exit: TaskExit) => void;
  /** Called each time the subscription is (re)established; `reconnected` is false the first time. */
  onConnected: (reconnected: boolean) => void;
  /** First and longest pause between attempts to reach containerd, in ms. Default 100 and 2 000. */
  backoffMs?: { initial: number; max: number } | undefined;
}

/** Filter for `/tasks/exit` events of one namespace; conditions inside one filter are ANDed. */
export function taskExitFilter(namespace: string): string {
  return `namespace==${JSON.stringify(namespace)},topic=="/tasks/exit"`;
}

/**
 * Follows containerd's `/tasks/exit` events for one namespace, and resubscribes with back-off when
 * the stream breaks (containerd restarted or is not up yet). Events published while no stream was
 * open are lost; `onConnected` is the hook to look at the tasks' state again.
 */
export class ExitMonitor {
  readonly #abort = new AbortController();
  readonly #done: Promise<void>;

  constructor(options: ExitMonitorOptions) {
    this.#done = this.#run(options);
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  async #run({ client, logger, onExit, onConnected, backoffMs }: ExitMonitorOptions): Promise<void> {
    const signal = this.#abort.signal;
    const initial = backoffMs?.initial ?? 100;
    const max = backoffMs?.max ?? 2_000;
    const filters = [taskExitFilter(client.namespace)];
    let delay = initial;
    let connectedOnce = false;
    let failing = false;
    while (!signal.aborted) {
      let since = 0;
      try {
        // Version answers only when containerd serves; a stream alone would not tell us.
        await client.version({ signal });
        since = Date.now();
        if (failing || connectedOnce) logger.info('subscribed to containerd events', { address: client.address });
        failing = false;
        onConnected(connectedOnce);
        connectedOnce = true;
        for await (const envelope of client.subscribe(filters, { signal })) {
          const exit = unpackTaskExit(envelope.event);
          if (exit !== undefined) onExit(exit);
        }
        logger.warn('containerd closed the event stream', { address: client.address });
      } catch (err) {
        if (signal.aborted) break;
        const fields = { address: client.address, error: (err as Error).message };
        if (failing) logger.debug('containerd still unreachable', fields);
        else logger.warn('containerd event stream failed; resubscribing', fields);
        failing = true;
      }
      if (since !== 0 && Date.now() - since > 1_000) delay = initial;
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        break;
      }
      delay = Math.min(delay * 2, max);
    }
  }
}
