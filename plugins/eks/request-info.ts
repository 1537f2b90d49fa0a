/**
 * Kubernetes request attributes, derived the way kube-apiserver's RequestInfoFactory does
 * (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), so the scope airlock checks is
 * the request the cluster will execute. Where the server would tolerate an ambiguous path
 * (empty or dot segments, an encoded `/`), we refuse instead: two parsers that might
 * disagree are a way around a policy.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';

export interface RequestInfo {
  isResourceRequest: boolean;
  /** The path as forwarded (percent-encoding kept). */
  path: string;
  /** Kubernetes verb for resource requests; lower-case HTTP method otherwise. */
  verb: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** The parts from `{resource}` on, decoded. */
  parts: string[];
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
/** Path-level verbs (`/api/v1/watch/...`, `/api/v1/proxy/...`). */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Subresources of a namespace, so `/namespaces/x/status` is not a resource called `status`. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** Split and percent-decode a path, refusing anything two parsers could read differently. */
export function splitPath(rawPath: string): string[] {
  const trimmed = rawPath.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return [];
  return trimmed.split('/').map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new AirlockError(ErrorCodes.BAD_REQUEST, `malformed percent-encoding in path segment "${segment}"`);
    }
    if (decoded === '' || decoded === '.' || decoded === '..' || decoded.includes('/') || /[\u0000-\u001f\u007f]/.test(decoded)) {
      throw new AirlockError(ErrorCodes.BAD_REQUEST, `ambiguous path segment "${segment}"`);
    }
    return decoded;
  });
}

/**
 * `metadata.name` from a field selector that requires an exact match, as
 * `fields.Selector.RequiresExactMatch` does: only a plain conjunction of terms (no escapes,
 * which we do not interpret: the name then stays unknown and a name-limited scope denies).
 */
function exactNameFromFieldSelector(selector: string | null): string {
  if (!selector || selector.includes('\\')) return '';
  for (const term of selector.split(',')) {
    const m = /^\s*metadata\.name\s*(==|=)\s*(.*?)\s*$/.exec(term);
    if (m) {
      const name = m[2] ?? '';
      // path.IsValidPathSegmentName
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('%')) return '';
      return name;
    }
  }
  return '';
}

/**
 * A boolean query option as the API server reads it (Convert_Slice_string_To_bool): absent
 * is false, the first value "0" or "false" (any case) is false, anything else — even
 * "no" or "" — is true.
 */
export function queryBool(query: URLSearchParams, key: string): boolean {
  const values = query.getAll(key);
  return values.length > 0 && !['false', '0'].includes(values[0]!.toLowerCase());
}

/**
 * Attributes of one request. `rawPath` is the path as received (percent-encoded, without
 * the airlock prefix), `query` the raw query string.
 */
export function requestInfo(method: string, rawPath: string, query: URLSearchParams): RequestInfo {
  const info: RequestInfo = {
    isResourceRequest: false,
    path: rawPath,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };

  let parts = splitPath(rawPath);
  if (parts.length < 3) return info;
  const prefix = parts[0]!;
  if (!API_PREFIXES.has(prefix)) return info;
  info.apiPrefix = prefix;
  parts = parts.slice(1);

  if (!GROUPLESS_API_PREFIXES.has(prefix)) {
    // The prefix is consumed: "do we have four parts?"
    if (parts.length < 3) return info;
    info.apiGroup = parts[0]!;
    parts = parts.slice(1);
  }

  info.isResourceRequest = true;
  info.apiVersion = parts[0]!;
  parts = parts.slice(1);

  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) throw new AirlockError(ErrorCodes.UNRESOLVABLE, `unable to determine kind and namespace from ${rawPath}`);
    info.verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    switch (method.toUpperCase()) {
      case 'POST':
        info.verb = 'create';
        break;
      case 'GET':
      case 'HEAD':
        info.verb = 'get';
        break;
      case 'PUT':
        info.verb = 'update';
        break;
      case 'PATCH':
        info.verb = 'patch';
        break;
      case 'DELETE':
        info.verb = 'delete';
        break;
      default:
        info.verb = '';
    }
  }

  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1]!;
      // `/namespaces/{ns}/{resource}/...` unless the next part is a namespace subresource.
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  info.parts = parts;

  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) info.subresource = parts[2]!;
  if (parts.length >= 2) info.name = parts[1]!;
  if (parts.length >= 1) info.resource = parts[0]!;

  if (info.name === '' && info.verb === 'get') {
    info.verb = queryBool(query, 'watch') ? 'watch' : 'list';
    info.name = exactNameFromFieldSelector(query.get('fieldSelector'));
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';
  return info;
}
