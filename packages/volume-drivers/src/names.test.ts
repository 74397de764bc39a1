import { describe, expect, it } from 'vitest';
import { isInvalidParameter } from '@berth/errdefs';
import { validateLocalVolumeName } from './names.js';

function errorOf(name: string): unknown {
  try {
    validateLocalVolumeName(name);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('validateLocalVolumeName (moby TestValidateName)', () => {
  it.each(['ab', 'thing.d', 'hello-world', 'name_with_underscore', 'a1', '0.-_', 'x'.repeat(255)])('accepts %j', (name) => {
    expect(errorOf(name)).toBeUndefined();
  });

  it.each(['x', '/testvol', './hello', '.hello', '~', '..', '.', '...', 'name/with/slash', '../name', 'a\0b', '', 'hello world', 'é'])(
    'refuses %j as invalid-parameter',
    (name) => {
      expect(isInvalidParameter(errorOf(name))).toBe(true);
    },
  );

  it('uses moby texts', () => {
    expect(errorOf('x')).toHaveProperty(
      'message',
      'volume name is too short, names should be at least two alphanumeric characters',
    );
    expect(errorOf('hello world')).toHaveProperty(
      'message',
      '"hello world" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
    );
    // One character but two bytes: not "too short" in moby either.
    expect((errorOf('é') as Error).message).toMatch(/^"é" includes invalid characters/);
    expect((errorOf('a\nb') as Error).message).toMatch(/^"a\\nb" includes invalid characters/);
  });

  it('refuses names longer than a directory entry cleanly', () => {
    const err = errorOf('x'.repeat(256));
    expect(isInvalidParameter(err)).toBe(true);
    expect(err).toHaveProperty('message', 'volume name is too long, names should be at most 255 characters');
  });
});
