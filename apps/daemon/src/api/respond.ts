import type { ServerResponse } from 'node:http';
import { goJsonText } from '@berth/gocompat';

export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  const json = goJsonText(value);
  const length = Buffer.byteLength(json) + 1;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': length });
  if (length < LARGE_ANSWER) {
    res.end(`${json}\n`);
    return;
  }
  // A large answer (a `volume ls` of thousands) is encoded once into the buffer that is sent:
  // appending the newline to the string would copy all of it again just to flatten it.
  const body = Buffer.allocUnsafe(length);
  body.write(json, 0, length - 1, 'utf8');
  body[length - 1] = 0x0a;
  res.end(body);
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
