/**
 * What a notification says (SPEC "Console and notifications": the webhook body and its
 * signature). Built from the audit record of the event and the grant's stored view; it
 * never holds a secret.
 */
import { createHmac } from 'node:crypto';
import type { AuditRecord } from '../plugin.ts';

export interface GrantFacts {
  id: string;
  agent: string;
  resource: string;
  access: string;
  scope: Record<string, unknown>;
  task: string;
  expiresAt: string | null;
}

export interface NotifyPayload {
  event: string;
  grant: {
    id: string | null;
    agent: string | null;
    resource: string | null;
    access: string | null;
    scope: Record<string, unknown> | null;
    task: string | null;
    status: string;
    expiresAt: string | null;
  };
  consoleUrl: string;
}

/** The grant status an event leaves behind (not the grant's status at delivery time). */
const STATUS_AFTER: Record<string, string> = {
  'grant.requested': 'requested',
  'grant.issued': 'active',
  'grant.pending': 'pending',
  'grant.approved': 'active',
  'grant.denied': 'denied',
  'grant.revoked': 'revoked',
  'grant.expired': 'expired',
};

export function grantIdOf(record: AuditRecord): string | undefined {
  if (record.grant) return record.grant;
  const id = record.data?.grantId;
  return typeof id === 'string' ? id : undefined;
}

export function buildPayload(record: AuditRecord, grant: GrantFacts | undefined, consoleBase: string): NotifyPayload {
  const data = record.data ?? {};
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const id = grantIdOf(record) ?? null;
  const expiresAt = typeof data.expiresAt === 'string' ? data.expiresAt : (grant?.expiresAt ?? null);
  return {
    event: record.type,
    grant: {
      id,
      agent: grant?.agent ?? record.agent ?? null,
      resource: grant?.resource ?? record.resource ?? null,
      access: grant?.access ?? str(data.access),
      scope: grant?.scope ?? (isObject(data.scope) ? data.scope : null),
      task: grant?.task ?? record.task ?? str(data.task),
      status: STATUS_AFTER[record.type] ?? (grant ? 'unchanged' : 'unknown'),
      expiresAt: record.type === 'grant.pending' ? null : expiresAt,
    },
    consoleUrl: id ? `${consoleBase}/grants/${encodeURIComponent(id)}` : consoleBase,
  };
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signatureHeader(secret: string, body: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
  return `t=${t},v1=${v1}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
