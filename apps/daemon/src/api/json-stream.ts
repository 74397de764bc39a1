import type { ServerResponse } from 'node:http';

/** moby's `streamformatter` ends each JSON message with CRLF. */
const NEWLINE = '\r\n';

/**
 * The JSON-message stream of pull, upgrade and push (moby's `ioutils.WriteFlusher` over the
 * response): headers set beforehand (`Content-Type: application/json`, `Docker-Plugin-Name`) go
 * out with the first message, and each message is written (flushed) as it comes. Until then an
 * error can still be an ordinary error response; after it, `fail` writes moby's in-stream
 * `{"errorDetail":{"message":…},"error":…}`.
 */
export class JsonMessageStream {
  readonly #res: ServerResponse;

  constructor(res: ServerResponse, headers: Readonly<Record<string, string>>) {
    this.#res = res;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  }

  /** Whether anything was sent: errors must then go in the stream. */
  get flushed(): boolean {
    return this.#res.headersSent;
  }

  write(message: unknown): void {
    if (this.#res.destroyed || this.#res.writableEnded) return;
    if (!this.#res.headersSent) this.#res.writeHead(200);
    this.#res.write(JSON.stringify(message) + NEWLINE);
  }

  /** moby's `streamformatter.FormatError`. */
  fail(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.write({ errorDetail: { message }, error: message });
  }

  /** Ends the response; an empty stream is a 200 with no body, as moby's handler returning nil. */
  end(): void {
    if (this.#res.destroyed || this.#res.writableEnded) return;
    if (!this.#res.headersSent) this.#res.writeHead(200);
    this.#res.end();
  }
}
