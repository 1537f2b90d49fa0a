/**
 * Where a notification goes: a signed webhook or a Slack incoming webhook. A target sends
 * one payload and resolves once the receiver answered 2xx; anything else rejects, and the
 * notifier retries.
 */
import { fetch } from 'undici';
import type { NotifyTargetConfig } from './schema.ts';
import { signatureHeader, type NotifyPayload } from './payload.ts';

export interface NotifyTarget {
  /** A label for logs and metrics; never the URL (a Slack URL is itself a secret). */
  readonly id: string;
  /** Stable across restarts while the target's config stays the same (its cursor id). */
  readonly cursorId: string;
  readonly events: ReadonlySet<string>;
  send(payload: NotifyPayload, eventId: string): Promise<void>;
}

const TIMEOUT_MS = 10_000;

export function createTarget(config: NotifyTargetConfig, index: number, env: NodeJS.ProcessEnv = process.env): NotifyTarget {
  const id = `${config.type}#${index}`;
  const events = new Set<string>(config.events);
  if (config.type === 'webhook') {
    const secret = env[config.secretEnv];
    if (!secret) throw new Error(`notify[${index}]: environment variable ${config.secretEnv} (secretEnv) is not set`);
    const url = config.url;
    return {
      id,
      cursorId: `notify:${id}:${url}`,
      events,
      send: async (payload, eventId) => {
        const body = JSON.stringify(payload);
        await post(url, body, { 'x-airlock-signature': signatureHeader(secret, body), 'x-airlock-event-id': eventId, 'x-airlock-event': payload.event });
      },
    };
  }
  const url = env[config.webhookUrlEnv];
  if (!url || !/^https?:\/\//.test(url)) throw new Error(`notify[${index}]: environment variable ${config.webhookUrlEnv} (webhookUrlEnv) is not set to an http(s) URL`);
  return {
    id,
    cursorId: `notify:${id}:${config.webhookUrlEnv}`,
    events,
    send: async (payload, eventId) => {
      await post(url, JSON.stringify(slackMessage(payload)), { 'x-airlock-event-id': eventId });
    },
  };
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'airlock-notify', ...headers },
    body,
    signal: AbortSignal.timeout(TIMEOUT_MS),
    redirect: 'manual',
  });
  // Drain so the connection is reused; the body itself does not matter.
  await res.arrayBuffer().catch(() => undefined);
  if (res.status < 200 || res.status > 299) throw new Error(`receiver answered HTTP ${res.status}`);
}

/** Slack's incoming-webhook format: plain text (for notifications) plus blocks with a button. */
export function slackMessage(p: NotifyPayload): Record<string, unknown> {
  const g = p.grant;
  const what = `${g.agent ?? 'an agent'} → ${g.resource ?? '?'} (${g.access ?? '?'})`;
  const verb = p.event === 'grant.pending' ? 'Approve or deny' : 'Open';
  const text = `airlock ${p.event}: ${what}${g.task ? ` for "${g.task}"` : ''}. ${verb} in the console: ${p.consoleUrl}`;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${escapeMrkdwn(p.event)}* ${escapeMrkdwn(what)}\n${g.task ? `> ${escapeMrkdwn(g.task)}\n` : ''}grant \`${escapeMrkdwn(g.id ?? '-')}\` · status ${escapeMrkdwn(g.status)}` } },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: verb }, url: p.consoleUrl, ...(p.event === 'grant.pending' ? { style: 'primary' } : {}) }] },
    ],
  };
}

function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
