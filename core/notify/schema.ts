/**
 * `notify:` in the config (SPEC "Console and notifications", key names are CONTRACT):
 * where grant events are announced. Secrets are never inline: `…Env` names a variable.
 */
import { z } from 'zod';

/** Audit record types a target may subscribe to. */
export const NOTIFY_EVENTS = [
  'grant.requested',
  'grant.issued',
  'grant.pending',
  'grant.approved',
  'grant.denied',
  'grant.revoked',
  'grant.expired',
  'policy.violation',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');
const events = z.array(z.enum(NOTIFY_EVENTS)).min(1);

const webhookTarget = z.strictObject({
  type: z.literal('webhook'),
  url: z.url({ protocol: /^https?$/ }),
  secretEnv: envName,
  events,
});

const slackTarget = z.strictObject({
  type: z.literal('slack'),
  webhookUrlEnv: envName,
  events,
});

export const notifySchema = z.array(z.discriminatedUnion('type', [webhookTarget, slackTarget])).default([]);

export type WebhookTargetConfig = z.infer<typeof webhookTarget>;
export type SlackTargetConfig = z.infer<typeof slackTarget>;
export type NotifyTargetConfig = WebhookTargetConfig | SlackTargetConfig;
