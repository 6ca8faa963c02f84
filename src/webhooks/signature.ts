// Standard Webhooks (standardwebhooks.com): the whsec_ secret, the webhook-id of a notification, and the three
// headers that sign one attempt. Receivers verify them with the official libraries (docs/webhooks.md).
import { createHash, createHmac, randomBytes } from 'node:crypto';

/** `whsec_` and the base64 of 32 random bytes (the spec allows 24 to 64). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * One id per notification (instance, token, reminder, channel), the same on every attempt, so that a receiver
 * that got it once drops the retries. Derived, not random: a retry after a lost answer computes it again.
 */
export function webhookId(ref: { instance: string; tokenId: string; reminder: string }): string {
  const digest = createHash('sha256').update(`${ref.instance}\n${ref.tokenId}\n${ref.reminder}\nwebhook`).digest('base64url');
  return `msg_${digest.slice(0, 32)}`;
}

/** The headers of one attempt: `webhook-signature` is `v1,` and the base64 HMAC-SHA256 of "id.timestamp.body". */
export function signedHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${signature}`,
  };
}
