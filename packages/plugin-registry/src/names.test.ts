import { describe, expect, it } from 'vitest';
import { goArch, selectPlatform } from './manifest.js';
import { referenceString } from '@berth/plugin-store';
import { parseRemote } from './names.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('names', () => {
  it('normalizes remotes as moby does', () => {
    expect(referenceString(parseRemote('vieux/sshfs'))).toBe('docker.io/vieux/sshfs:latest');
    expect(referenceString(parseRemote('localhost:5000/foo/bar:tag'))).toBe('localhost:5000/foo/bar:tag');
    expect(referenceString(parseRemote(`x@${digest}`))).toBe(`docker.io/library/x@${digest}`);
  });
});

describe('manifest lists', () => {
  const list = (manifests: unknown[]): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, manifests }));
  const entry = (architecture: string, d: string): unknown => ({
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    digest: d,
    size: 10,
    platform: { os: 'linux', architecture },
  });

  it('picks this platform\'s entry', () => {
    const other = `sha256:${'b'.repeat(64)}`;
    expect(selectPlatform(list([entry('arm64', other), entry('amd64', digest)]), 'amd64').digest).toBe(digest);
    expect(() => selectPlatform(list([entry('arm64', other)]), 'amd64')).toThrow('no matching manifest for linux/amd64');
    expect(goArch('x64')).toBe('amd64');
  });

  it('refuses entries whose digest could name a file outside the store', () => {
    expect(() => selectPlatform(list([entry('amd64', 'sha256:../../x')]), 'amd64')).toThrow('invalid manifest digest');
  });
});
