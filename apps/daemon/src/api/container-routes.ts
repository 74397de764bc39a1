import { invalidParameter } from '@berth/errdefs';
import { atoi, goQuote, parseUintReason } from '@berth/gocompat';
import type { RequestContext } from './context.js';
import { boolValue } from './form.js';
import { route, type Route } from './router.js';
import { emptyList, emptyPrune, formFilters, invalidWithPrefix, noSuch, unsupported } from './scope.js';

/** moby's `acceptedPsFilterTags`. */
const PS_FILTERS = ['ancestor', 'before', 'exited', 'id', 'isolation', 'label', 'name', 'status', 'health', 'since', 'volume', 'network', 'is-task', 'publish', 'expose'];
const CONTAINER_STATES = ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'];
const HEALTH_STATES = ['none', 'starting', 'healthy', 'unhealthy'];

/**
 * moby's checkpoint and container routers (checkpoints first, as moby registers them), for a daemon
 * without containers: `GET /containers/json` is `[]` once its query is checked as moby checks it,
 * lookups of a container or exec instance are moby's 404s, prune finds nothing, and everything
 * that would create, change or run a container is berth's 501.
 */
export function containerRoutes(): Route[] {
  const lookup = (check?: (ctx: RequestContext) => void) => (ctx: RequestContext) => {
    check?.(ctx);
    throw noSuchContainer(ctx.params.name ?? '');
  };
  const withForm = (ctx: RequestContext): void => void ctx.form();
  return [
    // Experimental in moby; berth has no checkpoints either way.
    unsupported('GET', '/containers/{name:.*}/checkpoints'),
    unsupported('POST', '/containers/{name:.*}/checkpoints'),
    unsupported('DELETE', '/containers/{name}/checkpoints/{checkpoint}'),

    route('HEAD', '/containers/{name:.*}/archive', lookup(archiveForm)),
    emptyList('GET', '/containers/json', validateListQuery),
    route('GET', '/containers/{name:.*}/export', lookup()),
    route('GET', '/containers/{name:.*}/changes', lookup()),
    route('GET', '/containers/{name:.*}/json', lookup()),
    route('GET', '/containers/{name:.*}/top', lookup(withForm)),
    route('GET', '/containers/{name:.*}/logs', lookup(logsForm)),
    route('GET', '/containers/{name:.*}/stats', lookup(withForm)),
    route('GET', '/containers/{name:.*}/attach/ws', lookup(withForm)),
    route('GET', '/exec/{id:.*}/json', (ctx) => {
      throw noSuch('exec instance', ctx.params.id ?? '');
    }),
    route('GET', '/containers/{name:.*}/archive', lookup(archiveForm)),

    unsupported('POST', '/containers/create'),
    unsupported('POST', '/containers/{name:.*}/kill'),
    unsupported('POST', '/containers/{name:.*}/pause'),
    unsupported('POST', '/containers/{name:.*}/unpause'),
    unsupported('POST', '/containers/{name:.*}/restart'),
    unsupported('POST', '/containers/{name:.*}/start'),
    unsupported('POST', '/containers/{name:.*}/stop'),
    unsupported('POST', '/containers/{name:.*}/wait'),
    unsupported('POST', '/containers/{name:.*}/resize'),
    unsupported('POST', '/containers/{name:.*}/attach'),
    unsupported('POST', '/containers/{name:.*}/exec'),
    unsupported('POST', '/exec/{name:.*}/start'),
    unsupported('POST', '/exec/{name:.*}/resize'),
    unsupported('POST', '/containers/{name:.*}/rename'),
    unsupported('POST', '/containers/{name:.*}/update'),
    emptyPrune('/containers/prune', ['label', 'label!', 'until'], { ContainersDeleted: null, SpaceReclaimed: 0 }, { minVersion: '1.25' }),
    unsupported('POST', '/commit'),
    unsupported('PUT', '/containers/{name:.*}/archive'),
    unsupported('DELETE', '/containers/{name:.*}'),
  ];
}

/** moby's `GetContainer` finding nothing: an empty name is a 400, anything else `No such container`. */
function noSuchContainer(name: string) {
  if (name === '') return invalidParameter(`invalid name or ID supplied: ${goQuote(name)}`);
  return noSuch('container', name);
}

/** `getContainersJSON` and `Containers` up to the point where they would look at containers. */
function validateListQuery(ctx: RequestContext): void {
  const filters = formFilters(ctx);
  const limit = ctx.form().get('limit');
  if (limit !== '') atoi(limit);
  filters.validate(PS_FILTERS);
  for (const value of filters.get('exited')) {
    try {
      atoi(value);
    } catch (err) {
      throw invalidWithPrefix(err, `invalid filter 'exited=${value}'`);
    }
  }
  for (const value of filters.get('status')) {
    if (!CONTAINER_STATES.includes(value)) {
      throw invalidParameter(`invalid filter 'status=${value}': invalid value for state (${value}): must be one of ${CONTAINER_STATES.join(', ')}`);
    }
  }
  filters.getBoolOrDefault('is-task', false);
  for (const value of filters.get('health')) {
    if (!HEALTH_STATES.includes(value)) {
      throw invalidParameter(`invalid filter 'health=${value}': invalid value for health (${value}): must be one of ${HEALTH_STATES.join(', ')}`);
    }
  }
  // `before` and `since` name a container, and there is none.
  for (const key of ['before', 'since']) {
    const value = filters.get(key)[0];
    if (value !== undefined) throw noSuch('container', value);
  }
  for (const key of ['publish', 'expose']) for (const value of filters.get(key)) checkPortFilter(key, value);
}

/** moby's `portOp` over `network.ParsePortRange` (400s here; moby answers these with a 500). */
function checkPortFilter(key: string, value: string): void {
  if (value.includes(':')) throw invalidParameter(`filter for '${key}' should not contain ':': ${value}`);
  const reason = portRangeError(value);
  if (reason !== undefined) throw invalidParameter(`error while looking up for ${key} ${value}: ${reason}`);
}

function portRangeError(value: string): string | undefined {
  if (value === '') return 'invalid port range: value is empty';
  const range = value.split('/', 1)[0] as string;
  const dash = range.indexOf('-');
  const start = dash < 0 ? range : range.slice(0, dash);
  const end = dash < 0 ? undefined : range.slice(dash + 1);
  const startReason = start === '' ? 'value is empty' : parseUintReason(start, 16);
  if (startReason !== undefined) return `invalid start port '${start}': ${startReason}`;
  if (end === undefined || end === start) return undefined;
  const endReason = end === '' ? 'value is empty' : parseUintReason(end, 16);
  if (endReason !== undefined) return `invalid end port '${end}': ${endReason}`;
  return Number(end) < Number(start) ? `invalid port range: ${value}` : undefined;
}

/** `getContainersLogs`'s checks before the container is looked up. */
function logsForm(ctx: RequestContext): void {
  const form = ctx.form();
  if (!boolValue(form, 'stdout') && !boolValue(form, 'stderr')) {
    throw invalidParameter("must specify at least one of 'stdout' or 'stderr'");
  }
}

/** moby's `ArchiveFormValues`. */
function archiveForm(ctx: RequestContext): void {
  const form = ctx.form();
  if ((ctx.params.name ?? '') === '') throw invalidParameter('bad parameter: name cannot be empty');
  if (form.get('path') === '') throw invalidParameter('bad parameter: path cannot be empty');
}
