import { silentLogger, type Logger } from '../logger.js';
import type { EventPredicate } from './event-filter.js';
import type { EventActor, EventMessage } from './event-message.js';

export interface EventsServiceOptions {
  /** Events kept for `since`/`until` replays (moby: 256). */
  historySize?: number;
  /** Events queued per subscriber before further ones are dropped for it (moby: 1024). */
  queueSize?: number;
  /** Unix nanoseconds; injectable for tests. */
  now?: () => bigint;
  logger?: Logger;
}

export interface SubscribeOptions {
  /** Replay buffered events from this time on (unix ns). */
  since?: bigint | undefined;
  /** Replay buffered events up to this time (unix ns). */
  until?: bigint | undefined;
  filter?: EventPredicate | undefined;
}

/**
 * The daemon's event bus (moby's `daemon/events`): a ring buffer of recent events for replays,
 * and live subscribers. Publishing never waits for a subscriber: one that does not keep up loses
 * the events its queue has no room for (moby drops them after 100 ms).
 */
export class EventsService {
  readonly #history: EventMessage[] = [];
  readonly #subscriptions = new Set<Subscription>();
  readonly #historySize: number;
  readonly #queueSize: number;
  readonly #now: () => bigint;
  readonly #logger: Logger;
  #closed = false;

  constructor(options: EventsServiceOptions = {}) {
    this.#historySize = options.historySize ?? 256;
    this.#queueSize = options.queueSize ?? 1024;
    this.#now = options.now ?? nanosecondWallClock();
    this.#logger = options.logger ?? silentLogger;
  }

  /** Publishes a local-scope event stamped now (moby's `Events.Log`). */
  log(action: string, type: string, actor: EventActor): void {
    const timeNano = this.#now();
    this.publish({ Type: type, Action: action, Actor: actor, scope: 'local', time: Number(timeNano / 1_000_000_000n), timeNano });
  }

  /** The sink the volume service reports to (moby's `VolumeEventLogger`). */
  logVolumeEvent(name: string, action: string, attributes: Record<string, string>): void {
    this.log(action, 'volume', { ID: name, Attributes: { ...attributes } });
  }

  publish(message: EventMessage): void {
    if (this.#closed) return;
    this.#history.push(message);
    if (this.#history.length > this.#historySize) this.#history.shift();
    for (const subscription of this.#subscriptions) subscription.offer(message);
  }

  /**
   * Subscribes to live events, returning as well the buffered ones between `since` and `until`
   * (none when neither is given), as moby's `SubscribeTopic`. Live events are not limited by
   * `since`/`until`; the caller stops reading at `until`.
   */
  subscribe(options: SubscribeOptions = {}): { buffered: EventMessage[]; subscription: Subscription } {
    const { since, until, filter } = options;
    const buffered: EventMessage[] = [];
    if (since !== undefined || until !== undefined) {
      for (let i = this.#history.length - 1; i >= 0; i--) {
        const m = this.#history[i] as EventMessage;
        if (since !== undefined && m.timeNano < since) break;
        if (until !== undefined && until > 0n && m.timeNano > until) continue;
        if (filter === undefined || filter(m)) buffered.push(m);
      }
      buffered.reverse();
    }
    const subscription = new Subscription(filter, this.#queueSize, this.#logger, (s) => this.#subscriptions.delete(s));
    if (this.#closed) subscription.close();
    else this.#subscriptions.add(subscription);
    return { buffered, subscription };
  }

  get subscriberCount(): number {
    return this.#subscriptions.size;
  }

  /** Unix nanoseconds on the clock events are stamped with. */
  now(): bigint {
    return this.#now();
  }

  /** Ends every subscription; later events are dropped. */
  close(): void {
    this.#closed = true;
    for (const subscription of [...this.#subscriptions]) subscription.close();
  }
}

/** One subscriber's queue; read it with `next()` or `for await`. */
export class Subscription implements AsyncIterable<EventMessage> {
  readonly #queue: EventMessage[] = [];
  readonly #filter: EventPredicate | undefined;
  readonly #capacity: number;
  readonly #logger: Logger;
  readonly #onClose: (s: Subscription) => void;
  #waiter: ((m: EventMessage | undefined) => void) | undefined;
  #closed = false;
  #dropped = 0;

  constructor(filter: EventPredicate | undefined, capacity: number, logger: Logger, onClose: (s: Subscription) => void) {
    this.#filter = filter;
    this.#capacity = capacity;
    this.#logger = logger;
    this.#onClose = onClose;
  }

  /** Called by the publisher; never blocks. */
  offer(message: EventMessage): void {
    if (this.#closed || (this.#filter !== undefined && !this.#filter(message))) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter(message);
      return;
    }
    if (this.#queue.length >= this.#capacity) {
      if (this.#dropped++ === 0) this.#logger.warn('event subscriber is too slow, dropping events');
      return;
    }
    this.#queue.push(message);
  }

  /** The next event, or `undefined` once the subscription is closed. */
  next(): Promise<EventMessage | undefined> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Events this subscriber lost because it did not keep up. */
  get dropped(): number {
    return this.#dropped;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#onClose(this);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(undefined);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<EventMessage> {
    try {
      for (let m = await this.next(); m !== undefined; m = await this.next()) yield m;
    } finally {
      this.close();
    }
  }
}

/**
 * Wall-clock unix nanoseconds, with the nanosecond digits of the process's monotonic clock (as Go's
 * `time.Now().UnixNano()`), never repeating or going back within the process. The wall clock is
 * read to the millisecond only, so the monotonic clock carries the time from a starting point taken
 * from the wall clock; when the two drift apart by more than a few milliseconds (the system clock
 * was set), the starting point is taken again.
 */
function nanosecondWallClock(): () => bigint {
  // The process's start on the wall clock plus the time since, to a fraction of a microsecond.
  let originHr = process.hrtime.bigint();
  let origin = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  const anchor = (): void => {
    originHr = process.hrtime.bigint();
    origin = BigInt(Date.now()) * 1_000_000n;
  };
  let last = 0n;
  return () => {
    let now = origin + (process.hrtime.bigint() - originHr);
    const driftMs = Number(now / 1_000_000n) - Date.now();
    if (driftMs > DRIFT_TOLERANCE_MS || driftMs < -DRIFT_TOLERANCE_MS) {
      anchor();
      now = origin + (process.hrtime.bigint() - originHr);
    }
    last = now > last ? now : last + 1n;
    return last;
  };
}

const DRIFT_TOLERANCE_MS = 5;
