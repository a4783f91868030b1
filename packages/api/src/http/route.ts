// Parsing request paths into what they address, the Kubernetes way:
//   /api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]]
//   /api/v1/{resource}[/{name}[/{subresource}]]             (cluster-scoped, or all namespaces)
//   /apis/{group}/{version}/...                               (same shapes)
//   /api/v1/watch/... and /apis/{group}/{version}/watch/...   (legacy watch prefix)
import { ApiError } from '../errors.ts';
import { findResource, type ResourceInfo } from '../resources.ts';

/**
 * The URL a request target names. An origin-form target ("/path?query") is always a path on
 * this server, even one that starts "//" (which `new URL(target, base)` would read as another
 * host, and refuse with a TypeError when that "host" is not one); an absolute-form target
 * ("http://host/path", RFC 9112 3.2.2) is read as given, and only its path and query are used.
 * Anything else is a 400.
 */
export function requestUrl(target: string | undefined): URL {
  const t = target ?? '/';
  try {
    return new URL(t.startsWith('/') ? `https://flotilla${t}` : t);
  } catch {
    throw new ApiError('BadRequest', 'the request target is not a path or an absolute URL');
  }
}

export interface ResourceRoute {
  readonly info: ResourceInfo;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  /** Addressed through the legacy /watch/ prefix. */
  readonly watchPrefix: boolean;
}

export function parseResourcePath(path: string): ResourceRoute | undefined {
  const parts = path.split('/').filter((p) => p !== '').map(decodeSegment);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) {
    group = '';
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  if (rest.length === 0) return undefined;
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  // namespaces/{ns}/{resource}/… addresses namespaced objects; namespaces[/{name}[/status]] the
  // namespaces themselves.
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  if (resource === undefined || extra.length > 0) throw new ApiError('NotFound', `the server could not find the requested resource (${path})`);
  const info = findResource(group, version, resource);
  if (info === undefined) throw new ApiError('NotFound', `the server could not find the requested resource: ${group === '' ? '' : `${group}/`}${version} ${resource}`);
  if (!info.namespaced && namespace !== undefined) throw new ApiError('NotFound', `${resource} are not namespaced`);
  if (subresource !== undefined && !info.subresources.includes(subresource as never)) {
    throw new ApiError('NotFound', `the server could not find the requested resource: ${resource}/${subresource}`);
  }
  return { info, namespace, name, subresource, watchPrefix };
}

/** A path segment without its %-escapes; a malformed escape is the client's error (400), not a URIError (500). */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError('BadRequest', `the path segment "${segment}" has a malformed %-escape: each % must start a UTF-8 sequence of %XX bytes`);
  }
}
