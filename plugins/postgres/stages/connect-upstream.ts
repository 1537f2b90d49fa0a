/**
 * Stage 5, connectUpstream: log in to the resource's server as the access level's database
 * user (RDS IAM token or configured password), or for a provisioned level as the grant's own
 * role (its random password, or an IAM token for that role). A refusal the server itself sends keeps its
 * fields and SQLSTATE (53300, 57P03, 28000, …) on the way to the client, with a detail
 * saying airlock relayed it; a server whose settings the audit cannot follow is refused.
 */
import { AirlockError, ErrorCodes, isAirlockError } from '../../../core/errors.ts';
import type { Session } from '../../../core/plugin.ts';
import type { PostgresContext } from '../config.ts';
import { recordRefusal } from '../audit-step.ts';
import { LEXING_REFUSAL_SQLSTATE } from '../lexing-guard.ts';
import { upstreamPassword, type UpstreamSecrets } from '../upstream-secrets.ts';
import { connectUpstream as login, UpstreamRefusal, type UpstreamConnection, type UpstreamTarget } from '../upstream.ts';
import { EarlyClose, Refusal, type Handshake } from './handshake.ts';
import type { Access } from './check-access.ts';

const NOT_FORWARDED = new Set(['user', 'database', 'replication']);
const RELAYED_DETAIL = 'airlock relayed this error from the upstream server';

export interface UpstreamDeps {
  ctx: PostgresContext;
  secrets: UpstreamSecrets;
}

export async function connectUpstream(
  h: Handshake, deps: UpstreamDeps, access: Access, session: Session, params: ReadonlyMap<string, string>, signal: AbortSignal,
): Promise<{ upstream: UpstreamConnection; target: UpstreamTarget }> {
  const target = upstreamTarget(deps, access, params);
  let upstream: UpstreamConnection;
  try {
    upstream = await login(target, signal);
  } catch (e) {
    if (h.earlyClose) throw new EarlyClose();
    const err = isAirlockError(e) ? e : new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'upstream login failed');
    session.end('error', { error: err.message, ...(e instanceof UpstreamRefusal ? { sqlstate: e.fields.get('C') } : {}) });
    if (e instanceof UpstreamRefusal) throw new Refusal(err, h.user, access.grant.resource, withRelayedDetail(e.fields));
    throw err;
  }
  if (h.earlyClose) {
    upstream.socket.destroy();
    throw new EarlyClose();
  }
  const scs = upstream.parameters.get('standard_conforming_strings');
  if (scs !== undefined && scs !== 'on') {
    upstream.socket.destroy();
    const message = `airlock: standard_conforming_strings = ${scs} is not allowed through airlock (the audit could not follow SQL lexed that way)`;
    await recordRefusal(deps.ctx.audit, session, 'policy.violation', {}, message);
    session.end('policy', { error: message });
    throw new Refusal(new AirlockError(ErrorCodes.BAD_REQUEST, message), h.user, access.grant.resource, { severity: 'FATAL', code: LEXING_REFUSAL_SQLSTATE, message });
  }
  return { upstream, target };
}

/** The server's fields in its order, with a detail naming airlock (kept if the server gave one). */
function withRelayedDetail(fields: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map(fields);
  const detail = fields.get('D');
  out.set('D', detail ? `${detail}\n(${RELAYED_DETAIL})` : `${RELAYED_DETAIL}.`);
  return out;
}

function upstreamTarget(deps: UpstreamDeps, access: Access, clientParams: ReadonlyMap<string, string>): UpstreamTarget {
  const { grant, resource, login } = access;
  const params: Record<string, string> = {};
  for (const [k, v] of clientParams) if (!NOT_FORWARDED.has(k)) params[k] = v;
  return {
    host: resource.host,
    port: resource.port,
    tls: resource.tls,
    ca: deps.secrets.caBundles.get(grant.resource),
    user: login.user,
    database: resource.database,
    params,
    timeoutMs: resource.connectTimeoutMs,
    password: upstreamPassword(deps.ctx, deps.secrets, resource, grant, login),
  };
}
