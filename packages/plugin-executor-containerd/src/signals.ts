import { constants } from 'node:os';
import { invalidParameter } from '@berth/errdefs';

/**
 * A signal number from a number or a name (`SIGTERM`, `TERM`, `sigterm`), as `docker kill -s`
 * accepts them. Numbers are taken as they are (containerd passes them to the task unchecked).
 */
export function signalNumber(signal: number | string): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal > 0 && signal < 65) return signal;
    throw invalidParameter(`invalid signal: ${signal}`);
  }
  const text = signal.trim();
  if (/^\d+$/.test(text)) return signalNumber(Number(text));
  const upper = text.toUpperCase();
  const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (n === undefined) throw invalidParameter(`invalid signal: ${signal}`);
  return n;
}
