import { invalidParameter } from '@berth/errdefs';

/**
 * A small, exact subset of Docker's image reference grammar (`distribution/reference`), enough to
 * resolve plugin names: `[domain[:port]/]path[:tag][@digest]`, normalised so that `x`,
 * `library/x` and `docker.io/library/x` are the same name.
 */
export interface NamedReference {
  readonly domain: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${REMOTE_NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const DOMAIN_AND_PATH = new RegExp(`^(${DOMAIN})/(${REMOTE_NAME})$`);
const FULL_ID = /^[a-f0-9]{64}$/;
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
// Far above any valid name; keeps the regular expressions away from pathological input.
const INPUT_MAX = 1024;

/** Parses a reference the way `reference.ParseNormalizedNamed` does, with its error texts. */
export function parseNormalizedNamed(text: string): NamedReference {
  if (FULL_ID.test(text)) {
    throw invalidParameter(`invalid repository name (${text}), cannot specify 64-byte hexadecimal strings`);
  }
  if (text.length > INPUT_MAX) throw invalidParameter(`repository name must not be more than ${NAME_MAX} characters`);
  const [domain, remainder] = splitDockerDomain(text);
  const colon = remainder.indexOf(':');
  const remote = colon < 0 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) {
    throw invalidParameter(`invalid reference format: repository name (${remote}) must be lowercase`);
  }
  return parse(`${domain}/${remainder}`);
}

function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let domain: string;
  let remainder: string;
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return [domain, remainder];
}

function parse(text: string): NamedReference {
  const match = REFERENCE.exec(text);
  if (match === null) {
    if (text === '') throw invalidParameter('repository name must have at least one component');
    if (REFERENCE.test(text.toLowerCase())) throw invalidParameter('repository name must be lowercase');
    throw invalidParameter('invalid reference format');
  }
  const [, name = '', tag, digest] = match;
  if (name.length > NAME_MAX) throw invalidParameter(`repository name must not be more than ${NAME_MAX} characters`);
  const parts = DOMAIN_AND_PATH.exec(name);
  if (parts === null) throw invalidParameter('invalid reference format');
  if (digest !== undefined) validateDigest(digest);
  return {
    domain: parts[1] ?? '',
    path: parts[2] ?? '',
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

function validateDigest(digest: string): void {
  const colon = digest.indexOf(':');
  const expected = DIGEST_HEX_LENGTH[digest.slice(0, colon)];
  if (expected === undefined) throw invalidParameter('unsupported digest algorithm');
  const hex = digest.slice(colon + 1);
  if (!/^[a-f0-9]+$/.test(hex)) throw invalidParameter('invalid checksum digest format');
  if (hex.length !== expected) throw invalidParameter('invalid checksum digest length');
}

/** Adds the implicit `latest` tag to a reference with neither tag nor digest. */
export function tagNameOnly(ref: NamedReference): NamedReference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** The short name users type: `docker.io/library/x` ⇒ `x`, `docker.io/vieux/sshfs` ⇒ `vieux/sshfs`. */
export function familiarName(ref: NamedReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return `${ref.domain}/${ref.path}`;
  if (ref.path.startsWith(OFFICIAL_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

/** The familiar name with its tag and digest, e.g. `vieux/sshfs:latest`. */
export function familiarString(ref: NamedReference): string {
  let out = familiarName(ref);
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** `reference.String()`: the full normalized form, `docker.io/vieux/sshfs:latest` (moby's `PluginReference`). */
export function referenceString(ref: NamedReference): string {
  let out = `${ref.domain}/${ref.path}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}
