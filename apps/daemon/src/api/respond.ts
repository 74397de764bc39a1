import type { ServerResponse } from 'node:http';
import { goJsonText } from '@berth/gocompat';

export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  writeEncodedJson(res, status, goJsonText(value));
}

/** An answer already encoded by `goJsonText`, or assembled from parts it encoded. */
export function writeEncodedJson(res: ServerResponse, status: number, json: string): void {
  if (json.length < LARGE_ANSWER) {
    const body = `${json}\n`;
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  writeJsonBody(res, status, jsonBody(json));
}

/** An answer's bytes as `jsonBody` makes them. */
export function writeJsonBody(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

/**
 * The bytes of an answer encoded by `goJsonText`, newline terminated. Encoded once into the buffer
 * that is sent: appending the newline to the string, or Node prepending the headers to it, would
 * copy all of a large answer (a `volume ls` of thousands) again just to flatten it.
 */
export function jsonBody(json: string): Buffer {
  const length = Buffer.byteLength(json) + 1;
  const body = Buffer.allocUnsafe(length);
  body.write(json, 0, length - 1, 'utf8');
  body[length - 1] = 0x0a;
  return body;
}

const LARGE_ANSWER = 64 * 1024;

/** A status with no body (204, or 200 for moby's empty answers). */
export function writeEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, status === 204 || status === 304 ? {} : { 'Content-Length': 0 });
  res.end();
}

/** Go's `http.Error`: plain text, newline terminated. */
export function writeText(res: ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
