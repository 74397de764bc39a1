import { invalidParameter, unavailable, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { goString, goStringMap, goStruct } from '@berth/gocompat';
import { versionLessThan } from './api-version.js';
import type { RequestContext } from './context.js';
import { boolValue } from './form.js';
import { readJson } from './read-json.js';
import { writeEmpty, writeEncodedJson, writeJson, writeJsonBody } from './respond.js';
import { route, type Route } from './router.js';
import { noSwarm } from './scope.js';
import { apiVolumeJson, VolumeListEncoder, type CreateVolumeOptions, type VolumeBackend } from './volume-backend.js';

/** moby's `volume.CreateOptions`. */
const CREATE_OPTIONS = goStruct('volume.CreateOptions', {
  Name: goString,
  Driver: goString,
  DriverOpts: goStringMap,
  Labels: goStringMap,
  ClusterVolumeSpec: goStruct('volume.ClusterVolumeSpec', {}),
});

/** berth's mount extension: `{"ID": "<reference>"}`. */
const MOUNT_REQUEST = goStruct('volume.MountRequest', { ID: goString });

/** Cluster volumes (and anonymous-only prune) arrived with this API version. */
const CLUSTER_VOLUMES_VERSION = '1.42';

/**
 * The volume router, in moby's order, plus berth's mount extension. There is no swarm: cluster
 * volume requests get moby's "swarm unavailable" answers.
 */
export function volumeRoutes(backend: VolumeBackend): Route[] {
  const lists = new VolumeListEncoder();
  return [
    route('GET', '/volumes', async (ctx) => {
      const form = ctx.form();
      let filters: Filters;
      try {
        filters = Filters.parse(form.get('filters'));
      } catch (err) {
        throw wrap(err, 'error reading volume filters');
      }
      const { volumes, warnings } = await backend.list(filters, { signal: ctx.signal });
      writeJsonBody(ctx.res, 200, lists.encode(volumes, warnings));
    }),
    route('GET', '/volumes/{name:.*}', async (ctx) => {
      ctx.form();
      const volume = await backend.get(name(ctx), { resolveStatus: true, signal: ctx.signal });
      writeEncodedJson(ctx.res, 200, apiVolumeJson(volume));
    }),
    route('POST', '/volumes/create', async (ctx) => {
      ctx.form();
      const body = (await readJson(ctx.req, CREATE_OPTIONS)) ?? {};
      if (isSet(body.ClusterVolumeSpec) && !versionLessThan(ctx.apiVersion, CLUSTER_VOLUMES_VERSION)) throw noSwarm();
      const volume = await backend.create(createOptions(body), { signal: ctx.signal });
      writeEncodedJson(ctx.res, 201, apiVolumeJson(volume));
    }),
    route(
      'POST',
      '/volumes/prune',
      async (ctx) => {
        const filters = Filters.parse(ctx.form().get('filters'));
        // Before 1.42, prune meant every unused local volume, not only anonymous ones.
        if (versionLessThan(ctx.apiVersion, CLUSTER_VOLUMES_VERSION)) filters.add('all', 'true');
        writeJson(ctx.res, 200, await backend.prune(filters, { signal: ctx.signal }));
      },
      { minVersion: '1.25' },
    ),
    route('POST', '/volumes/{name:.*}/mount', async (ctx) => {
      ctx.form();
      const ref = await mountReference(ctx);
      const mountpoint = await backend.mount(name(ctx), ref, { signal: ctx.signal });
      writeJson(ctx.res, 200, { Mountpoint: mountpoint });
    }),
    route('POST', '/volumes/{name:.*}/unmount', async (ctx) => {
      ctx.form();
      const ref = await mountReference(ctx);
      await backend.unmount(name(ctx), ref, { signal: ctx.signal });
      writeEmpty(ctx.res, 204);
    }),
    route(
      'PUT',
      '/volumes/{name:.*}',
      () => {
        throw unavailable('volume update only valid for cluster volumes, but swarm is unavailable');
      },
      { minVersion: CLUSTER_VOLUMES_VERSION },
    ),
    route('DELETE', '/volumes/{name:.*}', async (ctx) => {
      const force = boolValue(ctx.form(), 'force');
      await backend.remove(name(ctx), { force, signal: ctx.signal });
      writeEmpty(ctx.res, 204);
    }),
  ];
}

function name(ctx: RequestContext): string {
  return ctx.params.name ?? '';
}

/** Only what the client set reaches the service: an empty name means anonymous, no driver `local`. */
function createOptions(body: Record<string, unknown>): CreateVolumeOptions {
  const options: CreateVolumeOptions = {};
  if (typeof body.Name === 'string' && body.Name !== '') options.name = body.Name;
  if (typeof body.Driver === 'string' && body.Driver !== '') options.driver = body.Driver;
  if (isSet(body.DriverOpts)) options.driverOpts = body.DriverOpts as Record<string, string>;
  if (isSet(body.Labels)) options.labels = body.Labels as Record<string, string>;
  return options;
}

async function mountReference(ctx: RequestContext): Promise<string> {
  const body = await readJson(ctx.req, MOUNT_REQUEST);
  const id = body?.ID;
  if (typeof id !== 'string' || id === '') throw invalidParameter('missing ID: set "ID" to the reference that holds the mount');
  return id;
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}
