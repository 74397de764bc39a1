import { invalidParameter } from '@berth/errdefs';
import { atoi } from '@berth/gocompat';
import { versionLessThan } from './api-version.js';
import type { RequestContext } from './context.js';
import { writeJson } from './respond.js';
import { route, type Route } from './router.js';
import { formFilters, noSwarm, unsupported } from './scope.js';

/**
 * moby's build, session, swarm, distribution, debug and grpc routers, in moby's order, for a daemon
 * that builds nothing and is no swarm node: reads of swarm state answer as a dockerd outside any
 * swarm does (503, moby's `errNoManager` text), the build cache prune finds nothing, and the rest is
 * berth's 501.
 */
export function buildRoutes(): Route[] {
  return [
    unsupported('POST', '/build'),
    route('POST', '/build/prune', pruneBuildCache, { minVersion: '1.31' }),
    unsupported('POST', '/build/cancel'),
    unsupported('POST', '/session'),
  ];
}

export function swarmRoutes(): Route[] {
  const read = (list: boolean) => (ctx: RequestContext) => {
    // The list handlers read their filters before asking the cluster.
    if (list) formFilters(ctx);
    throw noSwarm();
  };
  const v125 = { minVersion: '1.25' };
  const v130 = { minVersion: '1.30' };
  return [
    unsupported('POST', '/swarm/init'),
    unsupported('POST', '/swarm/join'),
    unsupported('POST', '/swarm/leave'),
    route('GET', '/swarm', read(false)),
    route('GET', '/swarm/unlockkey', read(false)),
    unsupported('POST', '/swarm/update'),
    unsupported('POST', '/swarm/unlock'),

    route('GET', '/services', read(true)),
    route('GET', '/services/{id}', read(false)),
    unsupported('POST', '/services/create'),
    unsupported('POST', '/services/{id}/update'),
    unsupported('DELETE', '/services/{id}'),
    route('GET', '/services/{id}/logs', read(false)),

    route('GET', '/nodes', read(true)),
    route('GET', '/nodes/{id}', read(false)),
    unsupported('DELETE', '/nodes/{id}'),
    unsupported('POST', '/nodes/{id}/update'),

    route('GET', '/tasks', read(true)),
    route('GET', '/tasks/{id}', read(false)),
    route('GET', '/tasks/{id}/logs', read(false)),

    route('GET', '/secrets', read(true), v125),
    unsupported('POST', '/secrets/create', v125),
    unsupported('DELETE', '/secrets/{id}', v125),
    route('GET', '/secrets/{id}', read(false), v125),
    unsupported('POST', '/secrets/{id}/update', v125),

    route('GET', '/configs', read(true), v130),
    unsupported('POST', '/configs/create', v130),
    unsupported('DELETE', '/configs/{id}', v130),
    route('GET', '/configs/{id}', read(false), v130),
    unsupported('POST', '/configs/{id}/update', v130),
  ];
}

/** Image distribution (manifests from a registry), moby's debug handlers and the BuildKit gRPC endpoint. */
export function distributionDebugRoutes(): Route[] {
  return [
    unsupported('GET', '/distribution/{name:.*}/json', { minVersion: '1.30' }),
    unsupported('GET', '/debug/vars'),
    unsupported('GET', '/debug/pprof/'),
    unsupported('GET', '/debug/pprof/cmdline'),
    unsupported('GET', '/debug/pprof/profile'),
    unsupported('GET', '/debug/pprof/symbol'),
    unsupported('GET', '/debug/pprof/trace'),
    unsupported('GET', '/debug/pprof/{name}'),
    unsupported('POST', '/grpc'),
  ];
}

/**
 * `POST /build/prune` with no build cache: moby's query checks (filters; sizes in bytes, by API
 * version), then its report with nothing deleted.
 */
function pruneBuildCache(ctx: RequestContext): void {
  formFilters(ctx);
  const form = ctx.form();
  const bytes = (name: string): number => {
    const value = form.get(name);
    if (value === '') return 0;
    try {
      return atoi(value);
    } catch (err) {
      throw invalidParameter(`${name} is in bytes and expects an integer, got ${value}: ${(err as Error).message}`);
    }
  };
  if (versionLessThan(ctx.apiVersion, '1.48')) bytes('keep-storage');
  else {
    // `keep-storage` is the deprecated name, read only without `reserved-space`.
    if (bytes('reserved-space') === 0) bytes('keep-storage');
    bytes('max-used-space');
    bytes('min-free-space');
  }
  writeJson(ctx.res, 200, { CachesDeleted: null, SpaceReclaimed: 0 });
}
