import { BerthError } from '@berth/errdefs';
import { abortable } from '@berth/locker';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, isBrokenCircuitError, retry } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, type IOptions } from 'etcd3';

export interface EtcdConnectionOptions {
  /** Client URLs (`http://host:port`, or `https://` with TLS). */
  endpoints: readonly string[];
  /** PEM contents: `ca` (etcd's `--cacert`), `cert` and `key` (`--cert`, `--key`, a client certificate). */
  tls?: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined } | undefined;
  /** Deadline of one etcd request (etcdctl's `--command-timeout`). */
  commandTimeoutMs: number;
  /** How errors name the store, e.g. `etcd://h1:2379,h2:2379`. */
  display: string;
}

/** gRPC keepalive: a member that stops answering (a partition, a frozen process) is noticed within 15 s. etcd refuses pings more often than every 5 s. */
const KEEPALIVE = { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 };

/**
 * The etcd client and the one way berth calls it: every request with a deadline (the command
 * timeout), every failure a `BerthError` that names the store, and a record of the last contact and
 * the last failure (for warnings). A member that fails is skipped for a second, not etcd3's five.
 */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly display: string;
  readonly commandTimeoutMs: number;
  #lastContact = 0;
  #lastFailure: { at: number; reason: string } | undefined;
  /** What made the members fail, kept for the calls a member's open circuit refuses without trying. */
  #lastCause: string | undefined;

  constructor(options: EtcdConnectionOptions) {
    this.display = options.display;
    this.commandTimeoutMs = options.commandTimeoutMs;
    const { tls } = options;
    const config: IOptions = {
      hosts: [...options.endpoints],
      dialTimeout: options.commandTimeoutMs,
      grpcOptions: KEEPALIVE,
      // Streams (watch, lease keepalive) live on; every other call has a deadline, also inside etcd3.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + options.commandTimeoutMs }),
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(3) }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
        // etcd3 takes a started backoff. Its watch resumption is not relied on (see CacheSync), only kept short.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1_000 }).next(),
      },
    };
    if (tls !== undefined) {
      // etcd3 types the root certificate as required; gRPC uses the system's roots without one.
      config.credentials = { rootCertificate: tls.ca as Buffer, ...(tls.key && { privateKey: tls.key }), ...(tls.cert && { certChain: tls.cert }) };
    }
    this.client = new Etcd3(config);
  }

  /**
   * Runs one etcd request within the command timeout (also when gRPC does not give up by itself).
   * A caller that aborts gets its abort reason; anything else is `unavailable`, naming the store.
   */
  async call<T>(request: (options: { deadline: Date }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const ms = this.commandTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GRPCDeadlineExceededError(`no answer within ${ms}ms`)), ms);
    });
    try {
      const result = await abortable(Promise.race([request({ deadline: new Date(Date.now() + ms) }), late]), signal);
      this.contact();
      return result;
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      throw this.failed(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Something answered: the cluster can be reached. */
  contact(): void {
    this.#lastContact = Date.now();
  }

  /**
   * The error callers see for `err`, naming the store. A failure to reach the cluster is recorded
   * (see `failing`); an answer from etcd (a lease it does not know, a permission) is only passed on.
   */
  failed(err: unknown): BerthError {
    if (BerthError.is(err)) return err;
    let reason = describeFailure(err, this.commandTimeoutMs);
    if (err instanceof Error && isBrokenCircuitError(err)) reason = this.#lastCause ?? reason;
    else if (unreachable(err)) this.#lastCause = reason;
    if (unreachable(err)) this.#lastFailure = { at: Date.now(), reason };
    return new BerthError('unavailable', `cluster store ${this.display}: ${reason}`, { cause: err });
  }

  /** The last failure, while nothing has answered since. */
  get failing(): string | undefined {
    const failure = this.#lastFailure;
    return failure !== undefined && failure.at >= this.#lastContact ? failure.reason : undefined;
  }

  close(): void {
    this.client.close();
  }
}

/** Whether `err` means that etcd could not be reached (as opposed to an answer from it). */
function unreachable(err: unknown): boolean {
  return err instanceof GRPCDeadlineExceededError || (err instanceof Error && (isBrokenCircuitError(err) || isRecoverableError(err)));
}

/**
 * What went wrong, in a few words: gRPC names the cause inside a long text (`14 UNAVAILABLE: No
 * connection established. Last error: Error: connect ECONNREFUSED 10.0.0.1:2379 (<time>).
 * Resolution note: `), and OpenSSL's errors name theirs among codes and source paths.
 */
export function describeFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof GRPCDeadlineExceededError) return `etcd did not answer within ${timeoutMs}ms`;
  if (err instanceof Error && isBrokenCircuitError(err)) return 'etcd is unreachable (every member failed just now)';
  const message = err instanceof Error ? err.message : String(err);
  const last = /Last error: (?:Error: )?([\s\S]*?)(?: \(\d{4}-[^)]*\))?\. Resolution note/.exec(message)?.[1]?.trim();
  if (last === undefined) return message;
  const ssl = /:SSL routines:[^:]*:([^:]+):/.exec(last)?.[1];
  return `etcd is unreachable (${ssl ?? last})`;
}
