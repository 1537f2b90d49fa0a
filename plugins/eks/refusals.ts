/** Refusing a request: recorded (durably), then answered as a Status kubectl prints. */
import type { Context } from 'hono';
import type { ErrorCode } from '../../core/errors.ts';
import type { AuditRecorder, Grant } from '../../core/plugin.ts';
import { offeredProtocols, type Attrs } from './attributes.ts';
import { statusResponse, type KubeStatus } from './status.ts';
import { refuseOverWebSocket } from './ws-relay.ts';

/** Answer with a Status, over the exec channel protocol when the client asked for a WebSocket. */
export async function answerStatus(c: Context, status: KubeStatus): Promise<Response> {
  if ((c.req.header('upgrade') ?? '').toLowerCase() === 'websocket') {
    const ws = refuseOverWebSocket(c, offeredProtocols(c), status);
    if (ws) return ws;
  }
  return statusResponse(status);
}

/** Record the refused request (and, for scope, a policy violation); answer once recorded. */
export async function refuse(
  audit: AuditRecorder,
  c: Context,
  refusal: { grant: Grant<unknown>; attrs: Attrs; code: ErrorCode; status: KubeStatus; violation: Record<string, unknown> | undefined },
): Promise<Response> {
  const { grant, attrs, status, violation } = refusal;
  const recorded = audit.exchange(grant, { type: 'k8s.request', data: attrs }).refuse(refusal.code, status.message, { status: status.code });
  const violated = violation ? audit.exchange(grant, { type: 'policy.violation', data: attrs }).refuse(refusal.code, status.message, violation) : undefined;
  await Promise.all([recorded, violated]);
  return answerStatus(c, status);
}
