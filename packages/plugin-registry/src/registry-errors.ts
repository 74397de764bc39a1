import { BerthError, type ErrorKind } from '@berth/errdefs';

/** The error document of the distribution API: `{"errors":[{"code","message","detail"}]}`. */
interface ErrorDocument {
  errors?: { code?: unknown; message?: unknown }[];
}

/**
 * The text distribution's `errcode.Errors` prints for a registry error body, e.g.
 * `unauthorized: authentication required`, `manifest unknown: manifest unknown`; undefined when
 * the body is not such a document.
 */
export function registryErrorText(body: string): string | undefined {
  let doc: ErrorDocument;
  try {
    doc = JSON.parse(body) as ErrorDocument;
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.errors) || doc.errors.length === 0) return undefined;
  const texts = doc.errors.map((e) => {
    const code = typeof e.code === 'string' ? e.code.replaceAll('_', ' ').toLowerCase() : 'unknown';
    return typeof e.message === 'string' && e.message !== '' ? `${code}: ${e.message}` : code;
  });
  return texts.length === 1 ? texts[0] : `errors:\n${texts.join('\n')}\n`;
}

/** The kind an HTTP status of the registry maps to. */
export function kindForStatus(status: number): ErrorKind {
  if (status === 400) return 'invalid-parameter';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 429 || status >= 500) return 'unavailable';
  return 'system';
}

/**
 * An error for a registry answer with an unexpected status: the registry's own text when it sent
 * one (containerd's resolver passes it on the same way), else containerd's
 * `unexpected status from GET request to <url>: 404 Not Found`.
 */
export function registryError(method: string, url: string, status: number, statusText: string, body: string): BerthError {
  const text = registryErrorText(body) ?? `unexpected status from ${method} request to ${redact(url)}: ${status} ${statusText}`.trimEnd();
  return new BerthError(kindForStatus(status), text);
}

/** URLs of upload sessions carry state; only scheme, host and path are shown. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return url;
  }
}
