import { describe, expect, it } from 'vitest';
import { parseGoUrl } from './url.js';

describe('parseGoUrl', () => {
  it('finds the host and port of CIFS-style device URLs', () => {
    expect(parseGoUrl('//some.example.com/thepath')).toEqual({ host: 'some.example.com', port: '', hostStart: 2 });
    expect(parseGoUrl('//some.example.com:2345/thepath')).toMatchObject({ host: 'some.example.com:2345', port: '2345' });
    expect(parseGoUrl('//user:pw@1.2.3.4/share')).toMatchObject({ host: '1.2.3.4', hostStart: 10 });
    expect(parseGoUrl('smb://[::1]:445/x')).toMatchObject({ host: '[::1]:445', port: '445' });
    expect(parseGoUrl('//1.2.3.4/Program Files')).toMatchObject({ host: '1.2.3.4', port: '' });
    expect(parseGoUrl('///no-authority')).toMatchObject({ host: '' });
    expect(parseGoUrl('relative/path')).toMatchObject({ host: '' });
  });

  it('fails with Go texts', () => {
    expect(() => parseGoUrl(':::')).toThrow('parse ":::": missing protocol scheme');
    expect(() => parseGoUrl('a:b/c').host).not.toThrow();
    expect(() => parseGoUrl('1a:b')).toThrow('parse "1a:b": first path segment in URL cannot contain colon');
    expect(() => parseGoUrl('//host:abc/x')).toThrow('parse "//host:abc/x": invalid port ":abc" after host');
    expect(() => parseGoUrl('//my host/x')).toThrow('parse "//my host/x": invalid character " " in host name');
    expect(() => parseGoUrl('//host/x%zz')).toThrow('parse "//host/x%zz": invalid URL escape "%zz"');
    expect(() => parseGoUrl('//host/x\n')).toThrow('parse "//host/x\\n": net/url: invalid control character in URL');
  });
});
