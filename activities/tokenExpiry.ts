import { ApplicationFailure, log, metricMeter } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Config } from '../src/config';
import type {
  Clock,
  DeliverResult,
  NotificationStatus,
  RecordOutcomesInput,
  ReminderOutcome,
  SendReminderInput,
  SendReminderResult,
} from '../src/tokenExpiry/contract';
import {
  claimReminder,
  dedupeKey,
  markSent,
  markUnsent,
  releaseClaim,
  type ReminderRef,
} from '../src/db/notifications';
import { registryAdapter } from '../src/registry';
import { MailError, classifyPostmarkError, type Delivery, type Mailer } from '../src/email/postmarkMailer';
import { renderReminderEmail } from '../src/email/reminderEmail';
import { unsubscribeHeaders } from '../src/email/unsubscribe';
import type { SendPacer } from '../src/email/sendPacer';
import { createDigestSender } from './tokenExpiryDigest';

export interface ActivityDeps {
  db: Pool;
  mailer: Mailer;
  /** Waits for this send's turn under EMAIL_MAX_PER_SECOND; none by default. */
  pace?: SendPacer;
  clock: Clock;
  config: Pick<
    Config,
    | 'EMAIL_FROM'
    | 'REGISTRY_NAME'
    | 'REGISTRY_URL'
    | 'EXPIRY_EMAILS'
    | 'EXPIRY_EMAIL_ALLOWLIST'
    | 'EMAIL_MAX_PER_SECOND'
    | 'EXPIRY_DIGEST_WINDOW'
    | 'REGISTRY_SCHEMA'
    | 'API_PUBLIC_URL'
    | 'UNSUBSCRIBE_SECRET'
  >;
}

// Longer than the activity's 30 s start-to-close timeout: a stalled attempt keeps its claim until the
// server has given up on it, so a retry never sends beside it.
export const CLAIM_LEASE_MS = 45_000;

export function createActivities(deps: ActivityDeps) {
  const { db, mailer, pace = async () => undefined, clock, config } = deps;
  // The registry's tables are read only through its adapter.
  const registry = registryAdapter(config);
  async function holdBack(
    ref: ReminderRef,
    outcome: 'skipped' | 'suppressed',
    reason: string,
  ): Promise<SendReminderResult> {
    await markUnsent(db, ref, { status: outcome, reason });
    log.info(`reminder ${outcome}`, { tokenId: ref.tokenId, reminder: ref.reminder, reason });
    countEmail(outcome, reason);
    return { outcome, reason };
  }
  const skip = (ref: ReminderRef, reason: string) => holdBack(ref, 'skipped', reason);

  /** Sends one reminder at most once, however often it is retried or by how many workers. */
  async function sendOne(input: SendReminderInput): Promise<SendReminderResult> {
    const ref: ReminderRef = { tokenId: input.tokenId, reminder: input.reminder, dueAt: input.dueAt };
    const claim = await claimReminder(db, ref, CLAIM_LEASE_MS);
    if (claim.kind === 'busy') throw reminderBusy('another attempt at this reminder is still running', claim.leaseMs);
    if (claim.kind === 'final') return finalOutcome(claim.row);

    const key = dedupeKey(ref);
    if (claim.attempts > 1) {
      // An earlier attempt may have been accepted by Postmark before it lost the answer.
      const earlier = await mailer.findSent(key).catch((err: unknown) => {
        throw asRetryable(asMailError(err));
      });
      if (earlier) {
        await markSent(db, ref, earlier);
        log.info('reminder was sent by an earlier attempt', {
          tokenId: ref.tokenId,
          reminder: ref.reminder,
          messageId: earlier.messageId,
        });
        return { outcome: 'sent', messageId: earlier.messageId };
      }
    }

    const recipient = await registry.findRecipient(db, input.tokenId);
    const now = await clock.now();
    if (!recipient) return skip(ref, 'token-deleted');
    const { token, greeting: login, email } = recipient;
    if (token.revoked) return skip(ref, 'token-revoked');
    if (!token.expiredAt || token.expiredAt.getTime() !== Date.parse(input.expiresAt)) {
      return skip(ref, 'expiry-changed');
    }
    if (input.kind === 'warning' && token.expiredAt.getTime() <= now.getTime()) {
      return skip(ref, 'token-already-expired');
    }
    if (!email) return skip(ref, 'no-verified-email');
    // Read per send, so a worker restarted with another setting applies it to every waiting workflow.
    if (config.EXPIRY_EMAILS === 'off') return skip(ref, 'emails-off');

    const rendered = renderReminderEmail({
      registryName: config.REGISTRY_NAME,
      registryUrl: config.REGISTRY_URL,
      login,
      token: { ...token, expiresAt: token.expiredAt },
      now,
    });
    const heldBack = suppression(email, config);
    if (heldBack) return holdBack(ref, 'suppressed', heldBack);
    let delivery: Delivery;
    await pace();
    try {
      delivery = await mailer.send({
        from: config.EMAIL_FROM,
        to: email,
        ...rendered,
        tag: `token-expiry-${input.kind}`,
        dedupeKey: key,
        metadata: { token_id: input.tokenId, reminder: input.reminder },
        headers: input.kind === 'warning' ? unsubscribeHeaders(token.userId, config, now) : undefined,
      });
    } catch (err) {
      const failure = asMailError(err);
      const reason = `${failure.type}: ${failure.message}`;
      if (failure.kind === 'permanent') {
        // Final at once, here: a restarted or second workflow must find the row failed, not claimable again.
        await markUnsent(db, ref, { status: 'failed', reason });
        countEmail('failed', failure.type);
        throw ApplicationFailure.nonRetryable(failure.message, failure.type);
      }
      await releaseClaim(db, ref, reason);
      throw asRetryable(failure);
    }
    // If this write fails, the claim stays until its lease lapses and the retry finds the message by its key.
    await markSent(db, ref, delivery);
    countEmail('sent', input.kind);
    log.info('reminder sent', { tokenId: ref.tokenId, reminder: ref.reminder, messageId: delivery.messageId });
    return { outcome: 'sent', messageId: delivery.messageId };
  }

  const sendDigest = createDigestSender(deps, config.EXPIRY_DIGEST_WINDOW, sendOne);
  /** With digests on (EXPIRY_DIGEST_WINDOW), one email may cover the user's other tokens falling due together. */
  const sendReminder = (input: SendReminderInput): Promise<DeliverResult> =>
    config.EXPIRY_DIGEST_WINDOW > 0 ? sendDigest(input) : sendOne(input);

  return {
    sendReminder,

    /**
     * The first attempt, run as a local activity. Null when sends are capped: only the queued activity
     * goes through Temporal's limit across all workers.
     */
    async sendReminderFirstTry(input: SendReminderInput): Promise<DeliverResult | null> {
      return config.EMAIL_MAX_PER_SECOND ? null : sendReminder(input);
    },

    /** Writes reminders the workflow decided not to send, or gave up on, into the log. */
    async recordOutcomes({ tokenId, outcomes }: RecordOutcomesInput): Promise<void> {
      for (const { reminder, dueAt, status, reason } of outcomes) {
        await markUnsent(db, { tokenId, reminder, dueAt }, { status, reason });
        // A failure's reason starts with its type: "PostmarkInactiveRecipient: ...".
        if (status === 'failed') countEmail('failed', reason.split(':', 1)[0] as string);
      }
    },
  };
}

/** Another attempt holds the row: try again as its claim lapses (it may have died with its worker), not on the backoff. */
export function reminderBusy(message: string, leaseMs: number | null): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type: 'ReminderBusy',
    nextRetryDelay: leaseMs && leaseMs > 0 ? leaseMs + 1_000 : undefined,
  });
}

/** What a row that is already final answers a retry: its outcome, or the failure it recorded. */
export function finalOutcome(
  row: { status: Exclude<NotificationStatus, 'sending'>; reason: string | null; providerMessageId: string | null },
  digest: Pick<SendReminderResult, 'digest' | 'sentByTokenId'> = {},
): SendReminderResult {
  if (row.status === 'failed') throw ApplicationFailure.nonRetryable(row.reason ?? 'failed', 'ReminderFailed');
  return row.status === 'sent'
    ? { outcome: 'sent', messageId: row.providerMessageId ?? undefined, ...digest }
    : { outcome: row.status, reason: row.reason ?? undefined };
}

/** token_expiry_emails{outcome,type} on the worker's Prometheus endpoint (METRICS_PORT). */
export function countEmail(outcome: ReminderOutcome, type: string): void {
  metricMeter.createCounter('token_expiry_emails', 'emails', 'Reminder emails by outcome and type').add(1, { outcome, type });
}

/** Allowlist entries are addresses or @domains; no allowlist lets everyone through. */
/** Why a rendered email is held back instead of sent (EXPIRY_EMAILS=dry-run, the staging allowlist); null: send it. */
export function suppression(
  email: string,
  config: Pick<ActivityDeps['config'], 'EXPIRY_EMAILS' | 'EXPIRY_EMAIL_ALLOWLIST'>,
): 'dry-run' | 'not-on-allowlist' | null {
  if (config.EXPIRY_EMAILS === 'dry-run') return 'dry-run';
  return isAllowed(email, config.EXPIRY_EMAIL_ALLOWLIST) ? null : 'not-on-allowlist';
}

function isAllowed(email: string, allowlist: string[] | undefined): boolean {
  if (!allowlist) return true;
  const address = email.toLowerCase();
  const domain = address.slice(address.lastIndexOf('@'));
  return allowlist.includes(address) || allowlist.includes(domain);
}

export function asMailError(err: unknown): MailError {
  return err instanceof MailError ? err : classifyPostmarkError(err);
}

export function asRetryable(failure: { message: string; type: string }): ApplicationFailure {
  return ApplicationFailure.retryable(failure.message, failure.type);
}
