import { notFound, type BerthError } from '@berth/errdefs';
import { familiarString, parseNormalizedNamed, tagNameOnly } from '@berth/plugin-store';
import type { RequestContext } from './context.js';
import { route, type Route } from './router.js';
import { emptyList, emptyPrune, formFilters, outOfScope, unsupported } from './scope.js';

/** moby's `acceptedImageFilterTags`. */
const IMAGE_FILTERS = ['dangling', 'label', 'before', 'since', 'reference', 'until'];

/**
 * moby's image router for a daemon without images: `GET /images/json` is `[]` once its filters are
 * checked, lookups answer moby's `No such image: <ref>` (or its 400 for a malformed reference),
 * prune finds nothing, and pulling, loading, tagging, pushing, removing or searching images is
 * berth's 501.
 */
export function imageRoutes(): Route[] {
  const lookup = (withForm: boolean) => (ctx: RequestContext) => {
    if (withForm) ctx.form();
    throw noSuchImage(ctx.params.name ?? '');
  };
  return [
    emptyList('GET', '/images/json', validateListQuery),
    unsupported('GET', '/images/search'),
    route('GET', '/images/get', exportImages),
    route('GET', '/images/{name:.*}/get', exportImages),
    route('GET', '/images/{name:.*}/history', lookup(false)),
    route('GET', '/images/{name:.*}/json', lookup(true)),
    unsupported('GET', '/images/{name:.*}/attestations', { minVersion: '1.55' }),
    unsupported('POST', '/images/load'),
    unsupported('POST', '/images/create'),
    unsupported('POST', '/images/{name:.*}/push'),
    unsupported('POST', '/images/{name:.*}/tag'),
    emptyPrune('/images/prune', ['dangling', 'label', 'label!', 'until'], { ImagesDeleted: null, SpaceReclaimed: 0 }, { minVersion: '1.25' }),
    unsupported('DELETE', '/images/{name:.*}'),
  ];
}

/**
 * moby's `GetImage` finding nothing: `No such image: <ref>` with the reference in its familiar form
 * and `:latest` added to a bare name (`docker.io/library/alpine` ⇒ `alpine:latest`); an image ID or
 * digest as given; a malformed reference is moby's 400 (`invalid reference format`).
 */
export function noSuchImage(refOrId: string): BerthError {
  if (/^[a-f0-9]{64}$/.test(refOrId)) return notFound(`No such image: sha256:${refOrId}`);
  if (/^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/.test(refOrId)) return notFound(`No such image: ${refOrId}`);
  return notFound(`No such image: ${familiarString(tagNameOnly(parseNormalizedNamed(refOrId)))}`);
}

/** `Images` up to the point where it would look at images. */
function validateListQuery(ctx: RequestContext): void {
  const filters = formFilters(ctx);
  filters.validate(IMAGE_FILTERS);
  filters.getBoolOrDefault('dangling', false);
  // `before` and `since` name an image, and there is none.
  for (const key of ['before', 'since']) {
    const value = filters.get(key)[0];
    if (value !== undefined) throw noSuchImage(value);
  }
}

/** `docker save`: the first image named is not there; naming none saves nothing berth could write. */
function exportImages(ctx: RequestContext): void {
  const form = ctx.form();
  const names = ctx.params.name === undefined ? form.getAll('names') : [ctx.params.name];
  const first = names[0];
  if (first === undefined) throw outOfScope(ctx);
  throw noSuchImage(first);
}
