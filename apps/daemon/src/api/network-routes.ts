import { invalidParameter, notFound } from '@berth/errdefs';
import type { Filters } from '@berth/filters';
import { parseBool } from '@berth/gocompat';
import type { RequestContext } from './context.js';
import { writeJson } from './respond.js';
import { route, type Route } from './router.js';
import { emptyList, formFilters, invalidWithPrefix, unsupported } from './scope.js';

/** moby's `acceptedFilters` of the network list, and of prune. */
const NETWORK_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];
const NETWORK_PRUNE_FILTERS = ['label', 'label!', 'until'];

/**
 * moby's network router for a daemon without networks: `GET /networks` is `[]` once its filters are
 * checked as moby's `network.NewFilter` checks them, `GET /networks/{id}` is moby's 404 `network <id>
 * not found`, prune finds nothing, and creating, connecting, disconnecting or removing a network
 * is berth's 501.
 */
export function networkRoutes(): Route[] {
  const list = (ctx: RequestContext): void => checkFilter(formFilters(ctx), NETWORK_FILTERS);
  return [
    emptyList('GET', '/networks', list),
    emptyList('GET', '/networks/', list),
    route('GET', '/networks/{id:.+}', (ctx) => {
      const verbose = ctx.form().get('verbose');
      if (verbose !== '') {
        try {
          parseBool(verbose);
        } catch (err) {
          throw invalidWithPrefix(err, `invalid value for verbose: ${verbose}`);
        }
      }
      const id = ctx.params.id ?? '';
      throw notFound(`network ${id} not found`);
    }),
    unsupported('POST', '/networks/create'),
    unsupported('POST', '/networks/{id:.*}/connect'),
    unsupported('POST', '/networks/{id:.*}/disconnect'),
    route(
      'POST',
      '/networks/prune',
      (ctx) => {
        checkFilter(formFilters(ctx), NETWORK_PRUNE_FILTERS);
        writeJson(ctx.res, 200, { NetworksDeleted: null });
      },
      { minVersion: '1.25' },
    ),
    unsupported('DELETE', '/networks/{id:.*}'),
  ];
}

/**
 * moby's `network.NewFilter` / `NewPruneFilter` checks: the accepted keys, one `dangling` that is a
 * boolean, `type` `builtin` or `custom`, at most one `until` (its value is not read: berth has no
 * network it could compare with; moby also parses it).
 */
function checkFilter(filters: Filters, accepted: readonly string[]): void {
  filters.validate(accepted);
  const dangling = filters.get('dangling');
  if (dangling.length > 1) throw invalidParameter('got more than one value for filter key "dangling"');
  if (dangling.length === 1 && !['0', 'false', '1', 'true'].includes(dangling[0] as string)) {
    throw invalidParameter(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`);
  }
  // moby answers a bad `type` with a 500; the text is its own.
  for (const type of filters.get('type')) if (type !== 'builtin' && type !== 'custom') throw invalidParameter(`invalid filter: 'type'='${type}'`);
  if (filters.get('until').length > 1) throw invalidParameter('more than one until filter specified');
}
