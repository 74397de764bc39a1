import { describe, expect, it } from 'vitest';
import { pluginNameForPull } from './plugin-names.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('plugin names', () => {
  it('names a pulled plugin like the plugin router\'s getName', () => {
    expect(pluginNameForPull('vieux/sshfs')).toBe('vieux/sshfs:latest');
    expect(pluginNameForPull(`localhost:5000/p:1@${digest}`)).toBe('localhost:5000/p:1');
    expect(pluginNameForPull(`localhost:5000/p@${digest}`)).toBe('localhost:5000/p:latest');
    expect(pluginNameForPull('localhost:5000/p:1', 'docker.io/library/mine')).toBe('mine:latest');
    expect(() => pluginNameForPull('p', `mine@${digest}`)).toThrow('cannot use digest in plugin tag');
  });
});
