import { mkdtemp, rm } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../../test/http-client.js';
import { EventsService } from '../events/events-service.js';
import { silentLogger } from '../logger.js';
import { ApiServer } from './api-server.js';
import { eventsRoute, negotiate } from './events-route.js';

let dir: string;
let socket: string;
let events: EventsService;
let server: ApiServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ev-'));
  socket = join(dir, 'api.sock');
  events = new EventsService();
  server = await ApiServer.listen([socket], { routes: [eventsRoute(events)], logger: silentLogger });
});

afterEach(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const nowSeconds = (): number => Number(events.now() / 1_000_000_000n);
/** `now` as a `since`/`until` value with nanoseconds. */
const exactNow = (): string => {
  const ns = events.now();
  return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
};
const lines = (body: string): Array<Record<string, unknown>> => body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

/** Opens the stream and hands back the response once its headers arrived. */
function openStream(path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => request({ socketPath: socket, path }, resolve).on('error', reject).end());
}

describe('GET /events', () => {
  it('replays history and closes when until is in the past', async () => {
    events.logVolumeEvent('a', 'create', { driver: 'local' });
    events.logVolumeEvent('b', 'create', { driver: 'local' });
    const until = exactNow();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const res = await httpRequest(socket, { path: `/events?since=0&until=${until}` });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(lines(res.body).map((m) => m.Actor)).toEqual([
      { ID: 'a', Attributes: { driver: 'local' } },
      { ID: 'b', Attributes: { driver: 'local' } },
    ]);
  });

  it('streams live events until `until`, applying filters', async () => {
    const pending = httpRequest(socket, { path: `/events?until=${nowSeconds() + 1}&filters=${encodeURIComponent('{"volume":{"keep":true}}')}` });
    await new Promise((resolve) => setTimeout(resolve, 100));
    events.logVolumeEvent('drop', 'create', {});
    events.logVolumeEvent('keep1', 'create', {});
    const started = Date.now();
    const res = await pending;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(lines(res.body).map((m) => m.Actor)).toEqual([{ ID: 'keep1', Attributes: {} }]);
  });

  it('writes each event as it happens', async () => {
    const res = await openStream('/events');
    events.logVolumeEvent('now', 'destroy', {});
    const [chunk] = (await Promise.race([
      new Promise((resolve) => res.once('data', (c: Buffer) => resolve([c.toString()]))),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no event within 2 s')), 2000)),
    ])) as [string];
    expect(JSON.parse(chunk)).toMatchObject({ Type: 'volume', Action: 'destroy', Actor: { ID: 'now' } });
    res.destroy();
  });

  it('ends open streams when the server stops', async () => {
    const res = await openStream('/events');
    const ended = new Promise((resolve) => res.once('end', resolve));
    res.resume();
    await server?.close();
    server = undefined;
    await ended;
  });

  it('lets a client that stops reading hold up nobody but itself', async () => {
    const stalled = await openStream('/events');
    stalled.pause();
    const attributes = { padding: 'x'.repeat(1024) };
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) events.logVolumeEvent(`v${i}`, 'create', attributes);
    expect(performance.now() - started).toBeLessThan(2000);
    const other = await httpRequest(socket, { path: `/events?since=0&until=${exactNow()}&filters=${encodeURIComponent('{"volume":["v19999"]}')}` });
    expect(lines(other.body).map((m) => m.Actor)).toEqual([{ ID: 'v19999', Attributes: attributes }]);
    stalled.destroy();
  });

  it('refuses since after until, bad times and bad filters', async () => {
    expect((await httpRequest(socket, { path: '/events?since=20&until=10' })).json).toEqual({
      message: '`since` time (20) cannot be after `until` time (10)',
    });
    expect((await httpRequest(socket, { path: '/events?since=yesterday' })).status).toBe(400);
    expect((await httpRequest(socket, { path: '/events?filters=%7B' })).json).toEqual({ message: 'invalid filter' });
    expect((await httpRequest(socket, { path: `/events?filters=${encodeURIComponent('{"FOO":["x"]}')}` })).json).toEqual({
      message: "invalid filter 'FOO'",
    });
  });

  it('negotiates newline-delimited JSON and JSON sequences', async () => {
    events.logVolumeEvent('a', 'create', {});
    const until = exactNow();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const seq = await httpRequest(socket, { path: `/events?since=0&until=${until}`, headers: { Accept: 'application/json-seq' } });
    expect(seq.headers['content-type']).toBe('application/json-seq');
    expect(seq.body.startsWith('\x1e{"Type":"volume"')).toBe(true);
  });
});

describe('negotiate', () => {
  const accept = (value?: string): string => negotiate({ headers: value === undefined ? {} : { accept: value } } as IncomingMessage);
  it('picks like moby', () => {
    expect(accept()).toBe('application/json');
    expect(accept('application/json')).toBe('application/json');
    expect(accept('*/*')).toBe('application/x-ndjson');
    expect(accept('application/x-ndjson')).toBe('application/x-ndjson');
    expect(accept('application/json-seq, application/x-ndjson;q=0.5')).toBe('application/json-seq');
    expect(accept('application/x-ndjson;q=0')).toBe('application/json');
  });
});
