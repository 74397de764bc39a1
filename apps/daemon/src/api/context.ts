import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import type { Form } from './form.js';

/** What a route handler gets for one request. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path variables of the route pattern (`name` of `/volumes/{name:.*}`), percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** The API version the request is served at: its `/v{version}` prefix, else the maximum. */
  readonly apiVersion: string;
  /** The query string, parsed on first use; throws moby's `ParseForm` 400 when malformed. */
  form(): Form;
  /** Aborts when the client goes away before the response is complete. */
  readonly signal: AbortSignal;
  /** Aborts when the daemon stops serving; streaming handlers end their response on it. */
  readonly shutdown: AbortSignal;
  readonly logger: Logger;
}
