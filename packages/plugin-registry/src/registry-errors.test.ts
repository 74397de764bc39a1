import { describe, expect, it } from 'vitest';
import { registryError, registryErrorText } from './registry-errors.js';

describe('registry errors', () => {
  it('print like distribution\'s errcode', () => {
    const body = (errors: unknown[]): string => JSON.stringify({ errors });
    expect(registryErrorText(body([{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }]))).toBe(
      'unauthorized: authentication required',
    );
    expect(registryErrorText(body([{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }]))).toBe('manifest unknown: manifest unknown');
    expect(registryErrorText(body([{ code: 'DENIED' }, { code: 'NAME_UNKNOWN', message: 'x' }]))).toBe('errors:\ndenied\nname unknown: x\n');
    expect(registryErrorText('<html>')).toBeUndefined();
    expect(registryErrorText('{}')).toBeUndefined();
  });

  it('take their kind from the status and fall back to containerd\'s text', () => {
    expect(registryError('GET', 'http://r/v2/x/manifests/1', 404, 'Not Found', '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}').kind).toBe('not-found');
    const err = registryError('PUT', 'http://r/v2/x/blobs/uploads/abc?_state=secret', 503, 'Service Unavailable', 'down');
    expect(err.kind).toBe('unavailable');
    expect(err.message).toBe('unexpected status from PUT request to http://r/v2/x/blobs/uploads/abc: 503 Service Unavailable');
    expect(registryError('GET', 'http://r/', 401, '', '').kind).toBe('unauthorized');
    expect(registryError('GET', 'http://r/', 403, '', '').kind).toBe('forbidden');
  });
});
