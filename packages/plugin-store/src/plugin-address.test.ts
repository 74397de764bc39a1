import { describe, expect, it } from 'vitest';
import { parsePluginAddress } from './index.js';

describe('plugin addresses (moby TestClientScheme)', () => {
  it('speaks http to tcp, unix and http addresses and https only to https', () => {
    expect(parsePluginAddress('tcp://127.0.0.1:8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080, https: false });
    expect(parsePluginAddress('unix:///usr/local/plugins/foo')).toEqual({ kind: 'unix', socketPath: '/usr/local/plugins/foo' });
    expect(parsePluginAddress('http://127.0.0.1:8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080, https: false });
    expect(parsePluginAddress('https://127.0.0.1:8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080, https: true });
    expect(parsePluginAddress('https://example.com/docker/plugin')).toMatchObject({ host: 'example.com', port: 443 });
    expect(parsePluginAddress('tcp://[::1]:9000')).toMatchObject({ host: '::1', port: 9000 });
  });

  it('rejects addresses it cannot dial with clear texts', () => {
    expect(() => parsePluginAddress('localhost:8080')).toThrow('Unknown protocol');
    expect(() => parsePluginAddress('ftp://x')).toThrow('invalid plugin address "ftp://x": unsupported protocol "ftp"');
    expect(() => parsePluginAddress('tcp://x')).toThrow('missing port in address');
    const long = `/${'a'.repeat(120)}.sock`;
    expect(() => parsePluginAddress(`unix://${long}`)).toThrow(`unix socket path "${long}" is too long`);
  });
});
