import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { goString, goStringMap, goStruct } from '@berth/gocompat';
import { readJson } from './read-json.js';

const CREATE = goStruct('volume.CreateOptions', { Name: goString, Labels: goStringMap });

function request(body: string | undefined, headers: Record<string, string> = {}): IncomingMessage {
  const stream = Readable.from(body === undefined ? [] : [Buffer.from(body)]);
  const all: Record<string, string> = { ...headers };
  if (body !== undefined && headers['transfer-encoding'] === undefined) all['content-length'] ??= String(Buffer.byteLength(body));
  return Object.assign(stream, { headers: all }) as unknown as IncomingMessage;
}

const json = { 'content-type': 'application/json' };

async function failure(req: IncomingMessage, limit?: number): Promise<string> {
  try {
    await readJson(req, CREATE, limit === undefined ? {} : { limit });
  } catch (err) {
    expect((err as { kind?: string }).kind).toBe('invalid-parameter');
    return (err as Error).message;
  }
  throw new Error('readJson did not fail');
}

describe('readJson (moby httputils.ReadJSON)', () => {
  it('decodes a JSON body as Go, case-insensitively', async () => {
    expect(await readJson(request('{"name":"v","Labels":{"a":"b"}}', json), CREATE)).toEqual({ Name: 'v', Labels: { a: 'b' } });
    expect(await readJson(request('{"Name":"v"}', { 'content-type': 'application/json; charset=utf-8' }), CREATE)).toEqual({ Name: 'v' });
  });

  it('takes an absent or empty body as the zero value', async () => {
    expect(await readJson(request(undefined), CREATE)).toBeUndefined();
    expect(await readJson(request('', json), CREATE)).toBeUndefined();
    expect(await readJson(request('null', json), CREATE)).toBeUndefined();
  });

  it('answers every failure with the text of moby', async () => {
    expect(await failure(request('{}', { 'content-type': 'text/plain' }))).toBe(
      "unsupported Content-Type header (text/plain): must be 'application/json'",
    );
    // Content-Type is checked even without a body, as moby does.
    expect(await failure(request('', { 'content-type': 'text/plain' }))).toBe(
      "unsupported Content-Type header (text/plain): must be 'application/json'",
    );
    expect(await failure(request('{}', { 'content-type': 'application json' }))).toBe(
      'malformed Content-Type header (application json): mime: expected slash after first token',
    );
    expect(await failure(request('{}', {}))).toBe('malformed Content-Type header (): mime: no media type');
    expect(await failure(request('{i', json))).toBe("invalid JSON: invalid character 'i' looking for beginning of object key string");
    expect(await failure(request('{}x', json))).toBe('unexpected content after JSON');
    expect(await failure(request('  ', json))).toBe('invalid JSON: got EOF while reading request body');
    expect(await failure(request('{"Name":', json))).toBe('invalid JSON: unexpected EOF');
    expect(await failure(request('{"Labels":"x"}', json))).toBe(
      'invalid JSON: json: cannot unmarshal string into Go struct field CreateOptions.Labels of type map[string]string',
    );
  });

  it('reads chunked bodies (no Content-Length) the same way', async () => {
    const chunked = { ...json, 'transfer-encoding': 'chunked' };
    expect(await readJson(request('{"Name":"c"}', chunked), CREATE)).toEqual({ Name: 'c' });
    expect(await failure(request('', chunked))).toBe('invalid JSON: got EOF while reading request body');
  });

  it('refuses bodies over the limit without reading them whole', async () => {
    expect(await failure(request(`{"Name":"${'x'.repeat(100)}"}`, json), 64)).toBe('request body is larger than the limit of 64 bytes');
    const chunked = { ...json, 'transfer-encoding': 'chunked' };
    expect(await failure(request(`{"Name":"${'x'.repeat(100)}"}`, chunked), 64)).toBe('request body is larger than the limit of 64 bytes');
  });
});
