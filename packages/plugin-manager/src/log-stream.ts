import { Writable } from 'node:stream';
import type { Logger } from '@berth/logger';

const MAX_LINE = 16 * 1024;

/**
 * A stream that logs what a plugin writes, one message per line with the field `plugin=<id>`
 * (moby: stdout at info, stderr at error). Overlong lines are split so a plugin cannot make the
 * daemon buffer without bound.
 */
export function pluginLogStream(logger: Logger, level: 'info' | 'error', id: string): Writable {
  let pending = '';
  const emit = (line: string): void => {
    if (line !== '') logger[level](line, { plugin: id });
  };
  return new Writable({
    decodeStrings: true,
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        emit(pending.slice(0, newline).replace(/\r$/, ''));
        pending = pending.slice(newline + 1);
      }
      while (pending.length > MAX_LINE) {
        emit(pending.slice(0, MAX_LINE));
        pending = pending.slice(MAX_LINE);
      }
      done();
    },
    final(done) {
      emit(pending);
      pending = '';
      done();
    },
  });
}
