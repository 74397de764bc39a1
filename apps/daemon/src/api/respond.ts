import type { ServerResponse } from 'node:http';
import { goJson } from '@berth/gocompat';

export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  const body = goJson(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

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
