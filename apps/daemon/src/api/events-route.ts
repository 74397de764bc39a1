import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidParameter } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { eventFilter } from '../events/event-filter.js';
import { encodeEvent, type EventMessage } from '../events/event-message.js';
import { parseEventTime } from '../events/event-time.js';
import type { EventsService, Subscription } from '../events/events-service.js';
import type { RequestContext } from './context.js';
import { route, type Route } from './router.js';

const NDJSON = 'application/x-ndjson';
const JSON_SEQ = 'application/json-seq';

/**
 * `GET /events`: buffered events between `since` and `until`, then (unless `until` is already
 * past) live events until `until`, the client leaving, or the daemon stopping. One JSON object
 * per line, written as it happens.
 */
export function eventsRoute(events: EventsService): Route {
  return route('GET', '/events', async (ctx: RequestContext) => {
    const form = ctx.form();
    const sinceText = form.get('since');
    const untilText = form.get('until');
    const since = parseEventTime(sinceText);
    const until = parseEventTime(untilText);
    if (until !== undefined && since !== undefined && until < since) {
      throw invalidParameter(`\`since\` time (${sinceText}) cannot be after \`until\` time (${untilText})`);
    }
    const onlyPast = until !== undefined && until < events.now();
    const filter = eventFilter(Filters.parse(form.get('filters')));

    const contentType = negotiate(ctx.req);
    const { res } = ctx;
    res.writeHead(200, { 'Content-Type': contentType });
    res.flushHeaders();
    const encode = contentType === JSON_SEQ ? (m: EventMessage) => `\x1e${encodeEvent(m)}\n` : (m: EventMessage) => `${encodeEvent(m)}\n`;

    const { buffered, subscription } = events.subscribe({ since, until, filter });
    const stop = AbortSignal.any([ctx.signal, ctx.shutdown]);
    const onStop = (): void => subscription.close();
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop();
    try {
      for (const m of buffered) await write(res, encode(m), stop);
      if (onlyPast) return;
      if (until !== undefined) void closeAt(until, events, subscription, stop);
      for await (const m of subscription) await write(res, encode(m), stop);
    } finally {
      stop.removeEventListener('abort', onStop);
      subscription.close();
      if (!res.destroyed) res.end();
    }
  });
}

/** Writes one event; a client that does not read holds up only its own stream, until it leaves or the daemon stops. */
async function write(res: ServerResponse, chunk: string, stop: AbortSignal): Promise<void> {
  if (res.destroyed || stop.aborted) return;
  if (!res.write(chunk)) await once(res, 'drain', { signal: stop }).catch(() => undefined);
}

/** Ends the stream at `until`; timers cannot wait longer than ~24.8 days at once. */
async function closeAt(until: bigint, events: EventsService, subscription: Subscription, stop: AbortSignal): Promise<void> {
  try {
    for (let left = until - events.now(); left > 0n; left = until - events.now()) {
      const ms = Number(left / 1_000_000n) + 1;
      await sleep(Math.min(ms, 2 ** 31 - 1), undefined, { signal: stop });
    }
  } catch {
    return;
  }
  subscription.close();
}

/**
 * The events stream's media type, negotiated from `Accept` as moby does: newline-delimited JSON or
 * JSON text sequences when asked for, otherwise `application/json` (what the docker CLI gets).
 */
export function negotiate(req: IncomingMessage): string {
  const specs = parseAccept(req.headers.accept);
  let best = 'application/json';
  let bestQ = -1;
  let bestWild = 3;
  for (const offer of [NDJSON, JSON_SEQ]) {
    for (const spec of specs) {
      if (spec.q === 0 || spec.q < bestQ) continue;
      if (spec.value === '*/*') {
        if (spec.q > bestQ || bestWild > 2) [bestQ, bestWild, best] = [spec.q, 2, offer];
      } else if (spec.value.endsWith('/*')) {
        if (offer.startsWith(spec.value.slice(0, -1)) && (spec.q > bestQ || bestWild > 1)) [bestQ, bestWild, best] = [spec.q, 1, offer];
      } else if (spec.value === offer && (spec.q > bestQ || bestWild > 0)) {
        [bestQ, bestWild, best] = [spec.q, 0, offer];
      }
    }
  }
  return best;
}

function parseAccept(header: string | undefined): Array<{ value: string; q: number }> {
  if (header === undefined) return [];
  return header.split(',').flatMap((part) => {
    const [value = '', ...params] = part.split(';').map((s) => s.trim());
    if (value === '') return [];
    let q = 1;
    for (const param of params) {
      const [key, v] = param.split('=').map((s) => s.trim());
      if (key?.toLowerCase() === 'q' && v !== undefined) q = Number.isNaN(Number(v)) ? 0 : Number(v);
    }
    return [{ value: value.toLowerCase(), q }];
  });
}
