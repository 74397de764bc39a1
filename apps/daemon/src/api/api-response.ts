import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

/**
 * The server's responses: they carry the headers of moby's middlewares (`Server`, `Api-Version`,
 * …) until the status line is written, and add them then. Setting them on every response with
 * `setHeader` instead cost a tenth of a small request's CPU.
 */
export class ApiResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** Written before the route's own headers, which override them. */
  apiHeaders: Readonly<Record<string, string>> | undefined;

  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this;
  override writeHead(statusCode: number, statusMessage?: string, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this;
  override writeHead(
    statusCode: number,
    reasonOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    maybeHeaders?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    const api = this.apiHeaders;
    if (api !== undefined) {
      this.apiHeaders = undefined;
      const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : undefined;
      const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
      if (!Array.isArray(headers) && this.getHeaderNames().length === 0) {
        // The common case, one header object for Node's fast path.
        const merged = { ...api, ...headers };
        return reason === undefined ? super.writeHead(statusCode, merged) : super.writeHead(statusCode, reason, merged);
      }
      for (const [name, value] of Object.entries(api)) if (!this.hasHeader(name)) this.setHeader(name, value);
    }
    return typeof reasonOrHeaders === 'string'
      ? super.writeHead(statusCode, reasonOrHeaders, maybeHeaders)
      : super.writeHead(statusCode, reasonOrHeaders);
  }
}
