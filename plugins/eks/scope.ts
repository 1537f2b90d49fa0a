/**
 * Grant scope for Kubernetes: narrowing an access level into a grant's scope, and deciding
 * whether one request's attributes fall inside it. Resource entries read like kubectl's
 * `resource.group/subresource`; an entry without a group names a built-in API group (core,
 * dotless groups, `*.k8s.io`), never a CRD's group (CRD groups always contain a dot and
 * are not under k8s.io), so `pods` cannot be matched by `pods.evil.example.com`.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { AccessLevel, EksScope } from './config.ts';
import { KUBE_VERBS } from './config.ts';
import type { RequestInfo } from './request-info.ts';

interface ResourceEntry {
  any: boolean;
  name: string;
  /** undefined: the built-in groups. */
  group: string | undefined;
  /** undefined: the resource itself; '*': it and all its subresources. */
  sub: string | undefined;
}

function parseEntry(entry: string): ResourceEntry {
  if (entry === '*') return { any: true, name: '', group: undefined, sub: undefined };
  const slash = entry.indexOf('/');
  const res = slash < 0 ? entry : entry.slice(0, slash);
  const sub = slash < 0 ? undefined : entry.slice(slash + 1);
  const dot = res.indexOf('.');
  return { any: false, name: dot < 0 ? res : res.slice(0, dot), group: dot < 0 ? undefined : res.slice(dot + 1), sub };
}

export function isBuiltinGroup(group: string): boolean {
  return group === '' || !group.includes('.') || group.endsWith('.k8s.io');
}

function entryMatches(e: ResourceEntry, info: RequestInfo): boolean {
  if (e.any) return true;
  if (e.name !== info.resource) return false;
  if (e.group === undefined ? !isBuiltinGroup(info.apiGroup) : e.group !== info.apiGroup) return false;
  if (e.sub === undefined) return info.subresource === '';
  return e.sub === '*' || e.sub === info.subresource;
}

/** Does level entry `outer` allow everything request entry `inner` names? */
function entryCovers(outer: ResourceEntry, inner: ResourceEntry): boolean {
  if (outer.any) return true;
  if (inner.any || outer.name !== inner.name) return false;
  if (outer.group !== undefined && outer.group !== inner.group) return false;
  if (outer.group === undefined && inner.group !== undefined && !isBuiltinGroup(inner.group)) return false;
  if (outer.sub === '*') return true;
  return outer.sub === inner.sub;
}

const listOf = (v: readonly string[]): string => (v.length ? v.join(', ') : '(none)');

function stringList(requested: Record<string, unknown>, key: string): string[] | undefined {
  const v = requested[key];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x): x is string => typeof x === 'string' && x.length > 0 && x.length <= 253)) {
    throw new AirlockError(ErrorCodes.BAD_REQUEST, `scope.${key} must be a non-empty list of strings`);
  }
  return [...new Set(v)];
}

/** Narrow one list; every requested value must be allowed by the level. */
function narrow(key: string, level: readonly string[], requested: string[] | undefined, covers: (l: string, r: string) => boolean): string[] {
  if (requested === undefined) return [...level];
  for (const r of requested) {
    if (!level.some((l) => covers(l, r))) {
      throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `scope.${key} "${r}" is outside the access level (allowed: ${listOf(level)})`);
    }
  }
  return requested;
}

const plainCovers = (l: string, r: string): boolean => l === '*' || l === r;

/** The effective scope of a grant: `access` narrowed by `requested`; never wider. */
export function resolveEksScope(level: AccessLevel, requested: Record<string, unknown> | undefined): EksScope {
  const req = requested ?? {};
  if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'scope must be an object');
  const known = new Set(['verbs', 'resources', 'namespaces', 'names', 'clusterScoped']);
  for (const k of Object.keys(req)) {
    if (!known.has(k)) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown scope key "${k}" for eks (use verbs, resources, namespaces, names, clusterScoped)`);
  }
  const verbs = narrow('verbs', level.verbs, stringList(req, 'verbs'), plainCovers);
  for (const v of verbs) {
    if (v !== '*' && !(KUBE_VERBS as readonly string[]).includes(v)) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown verb "${v}"`);
  }
  const resources = narrow('resources', level.resources, stringList(req, 'resources'), (l, r) => entryCovers(parseEntry(l), parseEntry(r)));
  const namespaces = narrow('namespaces', level.namespaces, stringList(req, 'namespaces'), plainCovers);
  const requestedNames = stringList(req, 'names');
  const names = level.names ? narrow('names', level.names, requestedNames, (l, r) => l === r) : requestedNames;
  if (names?.some((n) => n.includes('/') || n.includes('%'))) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'scope.names must be object names');

  let clusterScoped = level.clusterScoped;
  if (req['clusterScoped'] !== undefined) {
    if (typeof req['clusterScoped'] !== 'boolean') throw new AirlockError(ErrorCodes.BAD_REQUEST, 'scope.clusterScoped must be a boolean');
    if (req['clusterScoped'] && !level.clusterScoped) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, 'scope.clusterScoped: the access level does not allow cluster-scoped requests');
    clusterScoped = req['clusterScoped'];
  }
  if (namespaces.length === 0 && !clusterScoped) throw new AirlockError(ErrorCodes.BAD_REQUEST, 'the scope allows no namespace');
  return { verbs, resources, namespaces, ...(names ? { names } : {}), clusterScoped };
}

/**
 * Non-resource URLs kubectl needs for discovery. Anything else outside /api and /apis
 * (metrics, debug, logs of the node) stays closed.
 */
const DISCOVERY_PATHS = [/^\/api\/?$/, /^\/api\/[^/]+\/?$/, /^\/apis\/?$/, /^\/apis\/[^/]+\/?$/, /^\/apis\/[^/]+\/[^/]+\/?$/, /^\/version\/?$/, /^\/openapi\/v2\/?$/, /^\/openapi\/v3(\/.*)?$/, /^\/(healthz|livez|readyz)\/?$/];

export interface Decision {
  allowed: boolean;
  /** What the request needs that the grant does not give (for the 403 and the record). */
  missing?: string;
}

/** The verb authorization uses: a websocket GET to exec/attach/portforward is a `create`. */
export function authorizationVerb(info: RequestInfo, websocketUpgrade: boolean): string {
  if (websocketUpgrade && info.verb === 'get' && info.resource === 'pods' && ['exec', 'attach', 'portforward'].includes(info.subresource)) {
    // kube-apiserver (AuthorizePodWebsocketUpgradeCreatePermission) checks `create` for these.
    return 'create';
  }
  return info.verb;
}

export function authorize(info: RequestInfo, verb: string, scope: EksScope): Decision {
  if (!info.isResourceRequest) {
    if ((verb === 'get' || verb === 'head') && DISCOVERY_PATHS.some((re) => re.test(info.path))) return { allowed: true };
    return { allowed: false, missing: `non-resource URL "${info.path}" (${verb}) is not a discovery path airlock forwards` };
  }
  if (verb === '' || !(scope.verbs.includes('*') || scope.verbs.includes(verb))) {
    return { allowed: false, missing: `verb "${verb || '(unknown method)'}" (the grant allows ${listOf(scope.verbs)})` };
  }
  if (!info.resource || !scope.resources.some((e) => entryMatches(parseEntry(e), info))) {
    const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
    return { allowed: false, missing: `resource "${res}" in API group "${info.apiGroup}" (the grant allows ${listOf(scope.resources)})` };
  }
  if (info.namespace === '') {
    if (!scope.clusterScoped) return { allowed: false, missing: 'cluster-scoped access (requests outside a namespace are not in the grant)' };
  } else if (!(scope.namespaces.includes('*') || scope.namespaces.includes(info.namespace))) {
    return { allowed: false, missing: `namespace "${info.namespace}" (the grant allows ${listOf(scope.namespaces)})` };
  }
  if (scope.names && !scope.names.includes(info.name)) {
    return { allowed: false, missing: info.name ? `object name "${info.name}" (the grant allows ${listOf(scope.names)})` : `a named object (the grant allows only ${listOf(scope.names)})` };
  }
  return { allowed: true };
}
