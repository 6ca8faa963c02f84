// The webhook channel of the send pipeline: one signed notification per token and reminder for a user who set a
// webhook, delivered at most once per attempt under a fenced claim, with one webhook-id on every attempt. The
// send activity runs it after the email, so Temporal's retries of that activity are its retries.
import { ApplicationFailure, log, metricMeter } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Config } from '../src/config';
import type { SendReminderInput } from '../src/tokenExpiry/contract';
import { claimDelivery, findUserWebhook, recordDelivery, type UserWebhook, type WebhookDeliveryStatus } from '../src/db/webhooks';
import type { RegistryAdapter, TokenRow } from '../src/registry/adapter';
import { registryBaseUrl } from '../src/email/reminderEmail';
import { systemResolve, type Resolve } from '../src/webhooks/address';
import { postWebhook } from '../src/webhooks/deliver';
import { signedHeaders, webhookId } from '../src/webhooks/signature';

type WebhookConfig = Pick<Config, 'REGISTRY_NAME' | 'REGISTRY_URL' | 'WEBHOOK_ALLOW_PRIVATE' | 'WEBHOOK_ALLOW_HTTP' | 'WEBHOOK_TIMEOUT'>;

export interface WebhookChannelDeps {
  db: Pool;
  registry: RegistryAdapter;
  config: WebhookConfig;
  now: () => Promise<Date>;
  /** The resolver deliveries check; the system's by default (tests give one that answers what they need). */
  resolve?: Resolve;
}

/** Which notification: the send's input, or the same fields of a send whose record the workflow took over. */
export type WebhookInput = Pick<SendReminderInput, 'instance' | 'tokenId' | 'reminder' | 'kind' | 'dueAt' | 'expiresAt'>;

/**
 * What the email's part of this attempt already read, so the webhook does not read it again: the token (null: it is
 * gone) and its owner's webhook (null: none). Undefined: not read; the webhook reads it itself.
 */
export interface SeenInAttempt {
  token?: TokenRow | null;
  webhook?: { userId: string; webhook: UserWebhook | null };
}

/** The part of an attempt the webhook needs: its cancellation, and how long it has left. */
export interface AttemptBudget {
  signal: AbortSignal;
  msLeft(): number;
}

/** Kept back from the attempt's deadline for the record after the POST. */
const RECORD_MARGIN_MS = 2_000;
/** A lease outlives the POST by this much, so a retry does not take a row whose POST is still under way. */
const LEASE_MARGIN_MS = 5_000;
const MIN_POST_MS = 1_000;
/**
 * A receiver still failing after this many attempts is recorded as failed, and the reminder goes on: fewer than the
 * send activity's 20, so a dead receiver never fails a reminder whose email went (about 1.7 hours on its backoff).
 */
export const WEBHOOK_MAX_ATTEMPTS = 15;

/** What a receiver gets: the token, the reminder and where to make a replacement; never a secret or an address. */
function webhookBody(
  token: Pick<TokenRow, 'id' | 'name' | 'crateScopes' | 'endpointScopes'> & { expiresAt: Date },
  reminder: { key: string; kind: SendReminderInput['kind']; dueAt: string },
  context: { id: string; createdAt: Date; registryName: string; registryUrl: string },
): string {
  const base = registryBaseUrl(context.registryUrl);
  return JSON.stringify({
    type: `token.expiry.${reminder.kind}`,
    timestamp: context.createdAt.toISOString(),
    data: {
      webhook_id: context.id,
      registry: context.registryName,
      token: {
        id: token.id,
        name: token.name,
        crate_scopes: token.crateScopes,
        endpoint_scopes: token.endpointScopes,
        expires_at: token.expiresAt.toISOString(),
      },
      reminder: { key: reminder.key, kind: reminder.kind, due_at: new Date(reminder.dueAt).toISOString() },
      regenerate_url: `${base}/settings/tokens/new?from=${encodeURIComponent(token.id)}`,
    },
  });
}

export function createWebhookChannel(deps: WebhookChannelDeps) {
  const { db, registry, config } = deps;
  const resolve = deps.resolve ?? systemResolve;
  const policy = { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, allowHttp: config.WEBHOOK_ALLOW_HTTP };

  /** Whether the owner gets this reminder by email: yes unless they set a webhook and chose it alone. */
  async function emailChosen(userId: string, seen: SeenInAttempt): Promise<boolean> {
    const webhook = await findUserWebhook(db, userId);
    seen.webhook = { userId, webhook };
    return !webhook || webhook.channels.includes('email');
  }

  /**
   * Delivers this token's reminder to its owner's webhook, if they set one. Returns when it is delivered, refused
   * for good (recorded as failed), or not to be sent; throws a retryable WebhookRetry when the receiver should be
   * asked again, having given the row back.
   */
  async function deliver(input: WebhookInput, attempt: AttemptBudget, seen: SeenInAttempt = {}): Promise<WebhookDeliveryStatus | null> {
    const token = seen.token !== undefined ? seen.token : ((await registry.findRecipient(db, input.tokenId))?.token ?? null);
    if (!token) return null;
    const webhook = seen.webhook?.userId === token.userId ? seen.webhook.webhook : await findUserWebhook(db, token.userId);
    if (!webhook) return null;

    const id = webhookId(input);
    const postMs = Math.min(config.WEBHOOK_TIMEOUT, attempt.msLeft() - RECORD_MARGIN_MS);
    if (postMs < MIN_POST_MS) throw ApplicationFailure.retryable('too little time left in the attempt to call the webhook', 'WebhookRetry');
    const claim = await claimDelivery(db, { tokenId: input.tokenId, reminder: input.reminder, webhookId: id }, postMs + LEASE_MARGIN_MS);
    if (claim.kind === 'busy') {
      throw ApplicationFailure.create({
        message: 'another attempt at this webhook delivery is still running',
        type: 'ReminderBusy',
        nextRetryDelay: claim.leaseMs && claim.leaseMs > 0 ? claim.leaseMs + 1_000 : undefined,
      });
    }
    if (claim.kind === 'final') return claim.row.status;
    const { fence } = claim;
    const logged = { tokenId: input.tokenId, reminder: input.reminder, webhookId: id };

    // The same rules as the email's: a token revoked, gone past its warning or given another expiry gets nothing.
    const now = await deps.now();
    const skip =
      token.revoked ? 'token-revoked'
      : !token.expiredAt || token.expiredAt.getTime() !== Date.parse(input.expiresAt) ? 'expiry-changed'
      : input.kind === 'warning' && token.expiredAt.getTime() <= now.getTime() ? 'token-already-expired'
      : null;
    if (skip) {
      await recordDelivery(db, fence, { status: 'skipped', responseStatus: null, reason: skip });
      log.info('webhook skipped', { ...logged, reason: skip });
      return 'skipped';
    }

    const body = webhookBody(
      { ...token, expiresAt: token.expiredAt as Date },
      { key: input.reminder, kind: input.kind, dueAt: input.dueAt },
      { id, createdAt: claim.createdAt, registryName: config.REGISTRY_NAME, registryUrl: config.REGISTRY_URL },
    );
    // The timestamp is the attempt's (receivers reject old ones); the id is the notification's.
    const headers = signedHeaders(webhook.secret, id, Math.floor(Date.now() / 1000), body);
    const outcome = await postWebhook({ url: webhook.url, body, headers }, { policy, resolve, timeoutMs: postMs, signal: attempt.signal });

    if (outcome.kind === 'delivered') {
      await recordDelivery(db, fence, { status: 'sent', responseStatus: outcome.status });
      countWebhook('sent');
      log.info('webhook delivered', { ...logged, attempts: claim.attempts, status: outcome.status });
      return 'sent';
    }
    if (outcome.kind === 'permanent') {
      await recordDelivery(db, fence, { status: 'failed', responseStatus: outcome.status, reason: outcome.reason, error: outcome.reason });
      countWebhook('failed');
      log.warn('webhook refused for good; recorded as failed', { ...logged, reason: outcome.reason });
      return 'failed';
    }
    if (claim.attempts >= WEBHOOK_MAX_ATTEMPTS) {
      const reason = `gave up after ${claim.attempts} attempts: ${outcome.reason}`;
      await recordDelivery(db, fence, { status: 'failed', responseStatus: outcome.status, reason, error: outcome.reason });
      countWebhook('failed');
      log.warn('webhook still failing; recorded as failed', { ...logged, reason });
      return 'failed';
    }
    await recordDelivery(db, fence, { status: 'sending', responseStatus: outcome.status, error: outcome.reason });
    countWebhook('retry');
    throw ApplicationFailure.retryable(`webhook: ${outcome.reason}`, 'WebhookRetry');
  }

  return { deliver, emailChosen };
}

/** token_expiry_webhooks{outcome}: deliveries sent, refused for good, and attempts to be retried. */
function countWebhook(outcome: 'sent' | 'failed' | 'retry'): void {
  metricMeter.createCounter('token_expiry_webhooks', 'deliveries', 'Webhook delivery attempts by outcome').add(1, { outcome });
}
