import { BerthError, conflict, kindOf, notFound, type ErrorKind } from '@berth/errdefs';

/*
 * moby's typed sentinels (`daemon/volume/service/errors.go`). They are reused as the `cause` of the
 * errors that report them, so `isNotExist` & co. recognise them by identity, as Go's `errors.Is`.
 */
export const errNoSuchVolume: BerthError = notFound('no such volume');
export const errVolumeInUse: BerthError = conflict('volume is in use');
export const errNameConflict: BerthError = conflict('volume name must be unique');

/** A fresh `no such volume` error (not-found) that `isNotExist` recognises. */
export const noSuchVolume = (): BerthError =>
  new BerthError('not-found', errNoSuchVolume.message, { cause: errNoSuchVolume });

/** A fresh `volume is in use` error (conflict) that `isInUse` recognises. */
export const inUse = (): BerthError => new BerthError('conflict', errVolumeInUse.message, { cause: errVolumeInUse });

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The kind an error resolves to; aborts and timeouts count as `canceled` / `deadline-exceeded`. */
export function kindFor(err: unknown): ErrorKind {
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return BerthError.from(err).kind;
  }
  return kindOf(err);
}

/**
 * moby's `OpErr`: `<op>[ <name>]: <err>[ - [<ref>, ...]]`, with the kind of the wrapped error
 * (untyped errors stay `system`, a 500).
 */
export function opError(op: string, name: string, err: unknown, refs?: readonly string[]): BerthError {
  let message = name === '' ? op : `${op} ${name}`;
  message += `: ${messageOf(err)}`;
  if (refs !== undefined && refs.length > 0) message += ` - [${refs.join(', ')}]`;
  return new BerthError(kindFor(err), message, { cause: err });
}

/** `errors.Wrapf(errNameConflict, detail)`: `<detail>: volume name must be unique`, a conflict. */
export function nameConflict(detail: string): BerthError {
  return new BerthError('conflict', `${detail}: ${errNameConflict.message}`, { cause: errNameConflict });
}

/** Prefixes the text and keeps the kind, like `errors.Wrap`. */
export function wrapError(err: unknown, prefix: string): BerthError {
  return new BerthError(kindFor(err), `${prefix}: ${messageOf(err)}`, { cause: err });
}

function causes(err: unknown, sentinel: BerthError): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 32 && current !== undefined && current !== null; depth++) {
    if (current === sentinel) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export const isNotExist = (err: unknown): boolean => causes(err, errNoSuchVolume);
export const isInUse = (err: unknown): boolean => causes(err, errVolumeInUse);
export const isNameConflict = (err: unknown): boolean => causes(err, errNameConflict);

/**
 * Errors that mean the driver could not be asked (moby: a `net.Error`), as opposed to the driver
 * answering with an error, which moby reads as "no such volume".
 */
export function isCommunicationError(err: unknown): boolean {
  let kind = kindFor(err);
  // Untyped errors may still carry a Node socket error code (ECONNREFUSED, ETIMEDOUT, ...).
  if (kind === 'system' && !BerthError.is(err)) kind = BerthError.from(err).kind;
  return kind === 'unavailable' || kind === 'deadline-exceeded' || kind === 'canceled';
}
