// The one send pipeline: a single reminder is a digest of one. Pace, claim (fenced), search if an earlier
// attempt may have sent, re-read and check each token, render, confirm the claim, send once, classify, record.
// Then the webhook channel (./sendWebhook.ts) for this token, under its own claim: a retry that finds the email
// final does not send it again, and a webhook refused for good never fails the email.
import { ApplicationFailure, Context, log, metricMeter } from '@temporalio/activity';
import type {
  DeliverResult,
  NotificationStatus,
  ReminderOutcome,
  SendReminderInput,
  SendReminderResult,
  UnrecordedSend,
  UnsentOutcome,
} from '../src/tokenExpiry/contract';
import { dedupeKey, listNotifications, type ReminderRef } from '../src/db/notifications';
import {
  claimRows,
  confirmClaim,
  markOutcomeUnknown,
  recordSent,
  recordUnsent,
  rekeyRow,
  releaseClaim,
  type ClaimedRow,
} from '../src/db/claims';
import { DIGEST_MAX_TOKENS, renderDigestEmail } from '../src/email/digestEmail';
import { emailChoices } from '../src/email/choices';
import { unsubscribeHeaders } from '../src/email/unsubscribe';
import { MailError, classifyPostmarkError, type Delivery } from '../src/email/postmarkMailer';
import { CLAIM_LEASE_MS, MIN_SEND_MS, sendBudgetMs, sendLeaseMs, unknownLeaseMs } from '../src/tokenExpiry/lease';
import { createMemberChooser } from './tokenExpiryDigest';
import { createWebhookChannel, type SeenInAttempt } from './sendWebhook';
import type { ActivityDeps } from './tokenExpiry';

export function createSendPipeline(deps: ActivityDeps) {
  const { db, registry, mailer, pace = async () => undefined, clock, config } = deps;
  const chooseMembers = createMemberChooser(db, registry, config);
  const searchLagMs = config.POSTMARK_SEARCH_LAG;
  const webhooks = createWebhookChannel({ db, registry, config, now: () => clock.now(), resolve: deps.resolve });

  /**
   * Sends one reminder on each channel its owner chose, each at most once however often it is retried: the email
   * (and the user's others falling due with it), then the webhook.
   */
  async function sendReminder(input: SendReminderInput): Promise<DeliverResult> {
    const attempt = attemptLimits();
    // The token and the owner's webhook as the email read them: the webhook does not read them again.
    const seen: SeenInAttempt = {};
    let result: DeliverResult;
    try {
      result = await sendEmail(input, attempt, seen);
    } catch (err) {
      // An email failed for good is final in the log (a retry answers the same failure without sending): the
      // webhook still goes. An accepted email whose record failed is the workflow's to record first.
      if (err instanceof ApplicationFailure && err.nonRetryable && err.type !== 'SentNotRecorded') {
        await webhooks.deliver(input, attempt, seen);
      }
      throw err;
    }
    if (!('waitUntil' in result)) await webhooks.deliver(input, attempt, seen);
    return result;
  }

  /** Sends one reminder's email, and the user's others falling due with it, at most once however often it is retried. */
  async function sendEmail(input: SendReminderInput, attempt: AttemptLimits, seen: SeenInAttempt): Promise<DeliverResult> {
    // Pace before claiming: a claim is not held while waiting for a turn.
    await pace(attempt.signal);
    const ref: ReminderRef = { tokenId: input.tokenId, reminder: input.reminder, dueAt: input.dueAt };
    // With digests off an email covers its own token only: nothing to choose and no user to lock on before the
    // claim, so the token is read once, after it (sendPart's re-read, which decides whether it goes).
    const leader = config.EXPIRY_DIGEST_WINDOW > 0 ? await registry.findRecipient(db, input.tokenId) : null;
    const now = await clock.now();
    const beforeExpiryMs = Date.parse(input.expiresAt) - Date.parse(input.dueAt);
    const key = dedupeKey(ref);
    let members: ClaimedRow[] = [];
    if (leader) {
      const chosen = await chooseMembers(input, leader.token.userId, leader.token.createdAt, now);
      if ('waitUntil' in chosen) {
        log.info("expired notice waits for the user's other tokens", { tokenId: input.tokenId, until: chosen.waitUntil });
        return chosen;
      }
      // The leader's part first; each part has its own key, so a lost answer is looked up part by part.
      members = chosen.members.map((token, i) => ({
        tokenId: token.tokenId,
        dueAt: new Date(token.expiresAt - beforeExpiryMs).toISOString(),
        dedupeKey: partKey(key, Math.floor((i + 1) / DIGEST_MAX_TOKENS)),
      }));
    }

    // A token that is gone has no user to lock on: its claim takes its own row only, and records why.
    const claim = await claimRows(db, { lockKey: leader?.token.userId ?? null, leader: ref, leaseMs: CLAIM_LEASE_MS, members });
    if (claim.kind === 'busy') {
      throw reminderBusy("another attempt at this reminder, or another token's digest, is still running", claim.leaseMs);
    }
    if (claim.kind === 'final') {
      const { digest, sentByTokenId } = claim.row;
      return finalOutcome(claim.row, { digest, sentByTokenId: sentByTokenId ?? undefined });
    }
    const { fence } = claim;
    const waited = input.waited === true;
    let rows = claim.rows;
    const own = rows[0]!;
    // A first attempt's row carries its own key; another key means another token's digest took it and that
    // attempt died (claims.ts): its email went out, or this reminder goes alone now.
    if (!isPartOf(own.dedupeKey, key)) {
      const earlier = await findSent(fence, own.dedupeKey, attempt);
      if (earlier) return recordEarlier(input, fence, own.dedupeKey, earlier, { now, waited: false });
      rows = [{ ...own, dedupeKey: await rekeyRow(db, fence, ref) }];
    }

    const results: (SendReminderResult | null)[] = [];
    for (const [part, partRows] of groupByPart(rows)) {
      // After an earlier attempt, the search decides: its claim lasted past Postmark's search lag, so a miss is trusted.
      const earlier = claim.attempts > 1 ? await findSent(fence, part, attempt) : null;
      results.push(
        earlier
          ? await recordEarlier(input, fence, part, earlier, { now, waited })
          : await sendPart(input, fence, part, partRows, { now, waited }, beforeExpiryMs, attempt, claim.attempts, seen),
      );
    }
    // The claim's first row is the leader's, so its part is the first. No outcome: another attempt took the
    // leader's row before this one recorded it, and the retry answers what that one recorded.
    const result = results[0];
    if (!result) throw claimLost("another attempt took this reminder's row and recorded its outcome");
    return result;
  }

  async function findSent(fence: string, key: string, attempt: AttemptLimits): Promise<Delivery | null> {
    try {
      return await mailer.findSent(key, { signal: attempt.signal, timeoutMs: attempt.msLeft() });
    } catch (err) {
      // Nothing was sent: give the rows back (a row whose outcome is unknown stays held until its lease lapses).
      await releaseClaim(db, fence, `search failed: ${asMailError(err).message}`);
      throw asRetryable(asMailError(err));
    }
  }

  /** Re-reads every token of one email, records why each one left out was, sends the rest, records them. */
  async function sendPart(
    input: SendReminderInput,
    fence: string,
    part: string,
    rows: ClaimedRow[],
    at: SendTime,
    beforeExpiryMs: number,
    attempt: AttemptLimits,
    attempts: number,
    seen: SeenInAttempt,
  ): Promise<SendReminderResult | null> {
    const { now } = at;
    const hasLeader = rows.some((r) => r.tokenId === input.tokenId);
    const recipients = await registry.findRecipients(db, rows.map((r) => r.tokenId));
    if (hasLeader) seen.token = recipients.get(input.tokenId)?.token ?? null;
    const outcomes = new Map<string, SendReminderResult>();
    const holdBack = async (tokenIds: string[], outcome: UnsentOutcome, reason: string) => {
      const done = await recordUnsent(db, fence, tokenIds, { status: outcome, reason });
      reportLost(input, tokenIds, done, `record ${outcome}`);
      for (const tokenId of done) {
        log.info(`reminder ${outcome}`, { tokenId, reminder: input.reminder, reason, digest: part });
        // A failure is counted by its type, once per email, and answered by throwing.
        if (outcome !== 'failed') {
          countEmail(outcome, reason);
          outcomes.set(tokenId, { outcome, reason });
        }
      }
    };

    const going: ClaimedRow[] = [];
    for (const row of rows) {
      const token = recipients.get(row.tokenId)?.token;
      // The expiry its row was claimed for: the leader's row carries its workflow's due time (claimRows).
      const expected = Date.parse(row.dueAt) + beforeExpiryMs;
      if (!token) await holdBack([row.tokenId], 'skipped', 'token-deleted');
      else if (token.revoked) await holdBack([row.tokenId], 'skipped', 'token-revoked');
      else if (!token.expiredAt || token.expiredAt.getTime() !== expected) await holdBack([row.tokenId], 'skipped', 'expiry-changed');
      else if (input.kind === 'warning' && token.expiredAt.getTime() <= now.getTime()) {
        await holdBack([row.tokenId], 'skipped', 'token-already-expired');
      } else going.push(row);
    }
    // Null in a part without the leader, or when another attempt took the leader's row first.
    const leaderOutcome = () => outcomes.get(input.tokenId) ?? null;
    if (going.length === 0) return leaderOutcome();
    const goingIds = going.map((r) => r.tokenId);
    // One owner for the whole group (every row going has its token): the address and the staging settings apply to all of it.
    const owner = recipients.get(going[0]!.tokenId)!;
    const { email } = owner;
    if (!(await webhooks.emailChosen(owner.token.userId, seen))) {
      await holdBack(goingIds, 'skipped', 'email-not-chosen');
      return leaderOutcome();
    }
    // Read per send, so a worker restarted with another setting applies it to every waiting workflow.
    if (!email || config.EXPIRY_EMAILS === 'off') {
      await holdBack(goingIds, 'skipped', email ? 'emails-off' : 'no-verified-email');
      return leaderOutcome();
    }
    const rendered = renderDigestEmail({
      registryName: config.REGISTRY_NAME,
      registryUrl: config.REGISTRY_URL,
      login: owner.greeting,
      tokens: going.map((row) => {
        const token = recipients.get(row.tokenId)!.token;
        return { ...token, expiresAt: token.expiredAt as Date };
      }),
      now,
      choices: await emailChoices(db, config, { userId: owner.token.userId, kind: input.kind, now }),
    });
    const heldBack = suppression(email, config);
    if (heldBack) {
      await holdBack(goingIds, 'suppressed', heldBack);
      return leaderOutcome();
    }

    // No send without a live claim: confirm every row of this email is still ours, and hold it past the send
    // and Postmark's search lag, with the send bounded to end first.
    const budgetMs = sendBudgetMs(attempt.msLeft());
    if (budgetMs < MIN_SEND_MS) {
      await releaseClaim(db, fence, 'too little time left in the attempt to send');
      throw ApplicationFailure.retryable('too little time left in the attempt to send; the next attempt sends', 'SendDeadline');
    }
    // A later attempt sends under a key of its own, on exactly the rows it sends for: an email found by its key
    // lists every row that carries the key, even when this group is smaller than an earlier attempt's.
    const sendKey = attempts > 1 ? `${part}:a${attempts}` : part;
    const confirmed = await confirmClaim(db, fence, goingIds, sendLeaseMs(budgetMs, searchLagMs), sendKey);
    if (confirmed.length !== goingIds.length) {
      reportLost(input, goingIds, confirmed, 'confirm before send');
      await releaseClaim(db, fence, 'lost a row before the send');
      throw claimLost('another attempt took a row of this email before it was sent; nothing sent');
    }

    let delivery: Delivery;
    try {
      delivery = await mailer.send(
        {
          from: config.EMAIL_FROM,
          to: email,
          ...rendered,
          tag: `token-expiry-${input.kind}`,
          dedupeKey: sendKey,
          metadata: { token_id: input.tokenId, reminder: input.reminder, tokens: String(going.length) },
          headers: input.kind === 'warning' ? unsubscribeHeaders(owner.token.userId, config, now) : undefined,
        },
        { signal: attempt.signal, timeoutMs: budgetMs },
      );
    } catch (err) {
      const failure = asMailError(err);
      const why = `${failure.type}: ${failure.message}`;
      if (failure.kind === 'permanent') {
        // Final at once for every token of the part: a restarted or covered workflow finds the rows failed.
        await holdBack(goingIds, 'failed', why);
        countEmail('failed', failure.type);
        if (hasLeader) throw ApplicationFailure.nonRetryable(failure.message, failure.type);
        return leaderOutcome();
      }
      if (failure.kind === 'transient') {
        // A definite refusal: nothing was accepted, the next attempt may send at once.
        await releaseClaim(db, fence, why);
        throw asRetryable(failure);
      }
      // Maybe accepted: the rows stay held until Postmark's search can be trusted, then the search decides.
      try {
        await markOutcomeUnknown(db, fence, why, unknownLeaseMs(searchLagMs));
      } catch {
        // The confirm's lease already covers the search lag.
      }
      log.warn('send outcome unknown; the rows stay held until the search can be trusted', {
        tokenId: input.tokenId,
        reminder: input.reminder,
        digest: part,
        type: failure.type,
      });
      throw ApplicationFailure.create({
        message: failure.message,
        type: failure.type,
        nextRetryDelay: unknownLeaseMs(searchLagMs) + 1_000,
      });
    }
    const covered = await record(input, fence, sendKey, delivery, at);
    for (let i = 0; i < covered.length; i++) countEmail('sent', input.kind);
    if (covered.length > 0) countDigest(covered.length);
    log.info('email sent', { tokenId: input.tokenId, reminder: input.reminder, tokenIds: covered, messageId: delivery.messageId });
    return sentResult(input, sendKey, delivery);
  }

  /** An email an earlier attempt got accepted, found by its key: recorded on the rows that carry it, nothing sent. */
  async function recordEarlier(input: SendReminderInput, fence: string, part: string, delivery: Delivery, at: SendTime): Promise<SendReminderResult> {
    const covered = await record(input, fence, part, delivery, at);
    log.info('email was sent by an earlier attempt', {
      tokenId: input.tokenId,
      reminder: input.reminder,
      digest: part,
      tokenIds: covered,
      messageId: delivery.messageId,
    });
    return sentResult(input, part, delivery);
  }

  /**
   * Records an accepted email on every row the claim holds under its key; returns those rows. A database that does
   * not answer must not turn it into a resend or a failure: the workflow retries the record on its own (recordSent).
   */
  async function record(input: SendReminderInput, fence: string, part: string, delivery: Delivery, at: SendTime): Promise<string[]> {
    try {
      return await recordSent(db, fence, part, delivery, at);
    } catch (err) {
      const unrecorded: UnrecordedSend = {
        instance: input.instance,
        fence,
        digest: part,
        messageId: delivery.messageId,
        submittedAt: delivery.submittedAt.toISOString(),
        now: at.now.toISOString(),
        waited: at.waited,
        tokenId: input.tokenId,
        reminder: input.reminder,
        kind: input.kind,
        dueAt: input.dueAt,
        expiresAt: input.expiresAt,
      };
      throw ApplicationFailure.create({
        message: `Postmark accepted the email but recording it failed: ${err instanceof Error ? err.message : String(err)}`,
        type: 'SentNotRecorded',
        nonRetryable: true,
        details: [unrecorded],
      });
    }
  }

  /**
   * The workflow's retry of a record the send could not write: fenced like every other write. Then the reminder's
   * webhook, which the send did not reach; a webhook to be retried retries this activity, whose record is then done.
   */
  async function recordUnrecordedSend(unrecorded: UnrecordedSend): Promise<SendReminderResult> {
    const covered = await recordSent(
      db,
      unrecorded.fence,
      unrecorded.digest,
      { messageId: unrecorded.messageId, submittedAt: new Date(unrecorded.submittedAt) },
      { now: new Date(unrecorded.now), waited: unrecorded.waited },
    );
    if (covered.length === 0 && !(await recordedAs(unrecorded))) reportLost(unrecorded, [unrecorded.tokenId], [], 'record sent (retried)');
    log.info('email sent, recorded on retry', { tokenId: unrecorded.tokenId, tokenIds: covered, messageId: unrecorded.messageId });
    await webhooks.deliver(unrecorded, attemptLimits());
    return sentResult(unrecorded, unrecorded.digest, unrecorded);
  }

  /** Whether an earlier attempt of this record already wrote it (a webhook retry runs the record again). */
  async function recordedAs(unrecorded: UnrecordedSend): Promise<boolean> {
    const rows = await listNotifications(db, unrecorded.tokenId);
    return rows.some((r) => r.providerMessageId === unrecorded.messageId);
  }

  return { sendReminder, recordUnrecordedSend };
}

/** When the email goes (the attempt's clock) and whether the leader's notice waited for the user's others. */
interface SendTime {
  now: Date;
  waited: boolean;
}

/** What the leader's workflow learns of an email that went out under `part`. */
function sentResult(input: { tokenId: string }, part: string, delivery: { messageId: string }): SendReminderResult {
  return { outcome: 'sent', messageId: delivery.messageId, digest: part, sentByTokenId: input.tokenId };
}

interface AttemptLimits {
  /** Aborts when the attempt is cancelled or reaches its start-to-close deadline. */
  signal: AbortSignal;
  msLeft(): number;
}

/** This attempt's cancellation signal and deadline: Temporal gives up on it at its start-to-close timeout. */
function attemptLimits(): AttemptLimits {
  const context = Context.current();
  const deadline = Date.now() + context.info.startToCloseTimeoutMs;
  const signal = AbortSignal.any([context.cancellationSignal, AbortSignal.timeout(context.info.startToCloseTimeoutMs)]);
  return { signal, msLeft: () => deadline - Date.now() };
}

/** A write that found another claim holding the row changed nothing: say so, in the log and a metric. */
function reportLost(input: { tokenId: string; reminder: string }, meant: string[], done: string[], write: string): void {
  const lost = meant.filter((id) => !done.includes(id));
  if (lost.length === 0) return;
  log.warn('a write lost its row to another attempt and changed nothing', { tokenId: input.tokenId, reminder: input.reminder, lost, write });
  metricMeter.createCounter('token_expiry_claims_lost', 'rows', 'Writes that found another attempt holding the row').add(lost.length, { write });
}

/** This attempt's claim lapsed and another attempt took a row: retry, to learn what that one did. */
function claimLost(message: string): ApplicationFailure {
  return ApplicationFailure.retryable(message, 'ClaimLost');
}

/** Another attempt holds the row: try again as its claim lapses (it may have died with its worker), not on the backoff. */
export function reminderBusy(message: string, leaseMs: number | null): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type: 'ReminderBusy',
    nextRetryDelay: leaseMs !== null && leaseMs > 0 ? leaseMs + 1_000 : undefined,
  });
}

/** What a row that is already final answers a retry: its outcome, or the failure it recorded. */
function finalOutcome(
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

/** token_expiry_digest_emails and token_expiry_digest_tokens: emails sent, and the tokens they covered. */
function countDigest(tokens: number): void {
  metricMeter.createCounter('token_expiry_digest_emails', 'emails', 'Reminder emails sent').add(1);
  metricMeter.createCounter('token_expiry_digest_tokens', 'tokens', 'Tokens covered by reminder emails').add(tokens);
}

/** Why a rendered email is held back instead of sent (EXPIRY_EMAILS=dry-run, the staging allowlist); null: send it. */
function suppression(
  email: string,
  config: Pick<ActivityDeps['config'], 'EXPIRY_EMAILS' | 'EXPIRY_EMAIL_ALLOWLIST'>,
): 'dry-run' | 'not-on-allowlist' | null {
  if (config.EXPIRY_EMAILS === 'dry-run') return 'dry-run';
  return isAllowed(email, config.EXPIRY_EMAIL_ALLOWLIST) ? null : 'not-on-allowlist';
}

/** Allowlist entries are addresses or @domains; no allowlist lets everyone through. */
function isAllowed(email: string, allowlist: string[] | undefined): boolean {
  if (!allowlist) return true;
  const address = email.toLowerCase();
  const domain = address.slice(address.lastIndexOf('@'));
  return allowlist.includes(address) || allowlist.includes(domain);
}

function asMailError(err: unknown): MailError {
  return err instanceof MailError ? err : classifyPostmarkError(err);
}

function asRetryable(failure: { message: string; type: string }): ApplicationFailure {
  return ApplicationFailure.retryable(failure.message, failure.type);
}

/** The leader's key for the first email, then `<key>:part2`, `<key>:part3`, ... */
function partKey(key: string, index: number): string {
  return index === 0 ? key : `${key}:part${index + 1}`;
}

/** The leader's own key, a part of it (`:part2`), or a later attempt's (`:a3`, `:part2:a3`). */
function isPartOf(part: string, key: string): boolean {
  return part === key || part.startsWith(`${key}:`);
}

function groupByPart(rows: ClaimedRow[]): Map<string, ClaimedRow[]> {
  const parts = new Map<string, ClaimedRow[]>();
  for (const row of rows) parts.set(row.dedupeKey, [...(parts.get(row.dedupeKey) ?? []), row]);
  return parts;
}
