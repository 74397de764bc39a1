import { describe, expect, it } from 'vitest';
import { route, Router } from './router.js';

const noop = (): void => {};

describe('Router', () => {
  const router = new Router([
    route('GET', '/volumes', noop),
    route('GET', '/volumes/{name:.*}', noop),
    route('POST', '/volumes/create', noop),
    route('POST', '/volumes/{name:.*}/mount', noop),
    route('OPTIONS', '/{anyroute:.*}', noop),
    route('GET', '/plugins/{name}/json', noop),
  ]);

  it('serves every route with and without a /v{version} prefix', () => {
    expect(router.match('GET', '/volumes')).toMatchObject({ route: { path: '/volumes' }, version: undefined });
    expect(router.match('GET', '/v1.41/volumes')).toMatchObject({ route: { path: '/volumes' }, version: '1.41' });
    expect(router.match('GET', '/v1/volumes')).toMatchObject({ version: '1' });
    expect(router.match('GET', '/v1.x/volumes')).toBeUndefined();
    expect(router.match('GET', '/v1.41')).toBeUndefined();
  });

  it('lets names contain slashes and matches only the route method', () => {
    expect(router.match('GET', '/volumes/a/b')?.params).toEqual({ name: 'a/b' });
    expect(router.match('GET', '/volumes/create')).toMatchObject({ route: { path: '/volumes/{name:.*}' }, params: { name: 'create' } });
    expect(router.match('POST', '/volumes/create')).toMatchObject({ route: { path: '/volumes/create' } });
    expect(router.match('POST', '/volumes/a/b/mount')).toMatchObject({ route: { path: '/volumes/{name:.*}/mount' }, params: { name: 'a/b' } });
    expect(router.match('GET', '/volumes/x/mount')?.params).toEqual({ name: 'x/mount' });
    expect(router.match('DELETE', '/volumes/x')).toBeUndefined();
    expect(router.match('HEAD', '/volumes')).toBeUndefined();
  });

  it('matches a plain {name} variable as one segment', () => {
    expect(router.match('GET', '/plugins/a/json')?.params).toEqual({ name: 'a' });
    expect(router.match('GET', '/plugins/a/b/json')).toBeUndefined();
  });

  it('answers OPTIONS on any path', () => {
    expect(router.match('OPTIONS', '/anything/at/all')).toMatchObject({ params: { anyroute: 'anything/at/all' } });
    expect(router.match('OPTIONS', '/v1.50/x')).toMatchObject({ version: '1.50', params: { anyroute: 'x' } });
  });
});
