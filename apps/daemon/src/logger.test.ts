import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

const at = new Date('2025-01-02T03:04:05.678Z');

function capture(options: Parameters<typeof createLogger>[0] = {}): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ now: () => at, write: (l) => lines.push(l), ...options }) };
}

describe('createLogger', () => {
  it('writes logrus-style text lines with fields', () => {
    const { lines, logger } = capture();
    logger.child({ component: 'api' }).info('request failed', { status: 500, error: new Error('boom here') });
    expect(lines).toEqual([`time=2025-01-02T03:04:05.678Z level=info msg="request failed" component=api status=500 error="boom here"\n`]);
  });

  it('writes JSON lines', () => {
    const { lines, logger } = capture({ format: 'json' });
    logger.warn('slow', { volume: 'v1', msg: 'clash', n: 10n });
    expect(JSON.parse(lines[0] as string)).toEqual({ level: 'warn', msg: 'slow', time: '2025-01-02T03:04:05.678Z', volume: 'v1', 'fields.msg': 'clash', n: '10' });
  });

  it('drops lines below the level', () => {
    const { lines, logger } = capture({ level: 'warn' });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(lines.map((l) => /level=(\w+)/.exec(l)?.[1])).toEqual(['warn', 'error']);
  });
});
