// The send of a reminder when digests are on (EXPIRY_DIGEST_WINDOW > 0): the token whose reminder falls due
// first sends one email for the user's tokens falling due together, and records it on every token's row.
import { ApplicationFailure, log, metricMeter } from '@temporalio/activity';
import type { DeliverResult, SendReminderInput, SendReminderResult } from '../src/tokenExpiry/contract';
import { candidateExpiries, expiredDigest, warningDigest, type DigestToken } from '../src/tokenExpiry/digest';
import {
  claimDigest,
  dedupeKey,
  markDigestSent,
  markUnsent,
  rekeyDigestRow,
  releaseClaim,
  tokensWithRow,
  type DigestRow,
  type ReminderRef,
} from '../src/db/notifications';
import { registryAdapter } from '../src/registry';
import { DIGEST_MAX_TOKENS, renderDigestEmail } from '../src/email/digestEmail';
import { unsubscribeHeaders } from '../src/email/unsubscribe';
import type { Delivery } from '../src/email/postmarkMailer';
import {
  asMailError,
  asRetryable,
  CLAIM_LEASE_MS,
  countEmail,
  finalOutcome,
  reminderBusy,
  suppression,
  type ActivityDeps,
} from './tokenExpiry';

export function createDigestSender(
  { db, mailer, pace = async () => undefined, clock, config }: ActivityDeps,
  windowMs: number,
  sendOne: (input: SendReminderInput) => Promise<SendReminderResult>,
) {
  const registry = registryAdapter(config);
  /** Which tokens the leader's email covers, chosen before the claim; the claim takes those still free. */
  async function chooseMembers(
    input: SendReminderInput,
    userId: string,
    createdAt: Date,
    now: Date,
  ): Promise<{ members: DigestToken[] } | { waitUntil: string }> {
    const leader: DigestToken = { tokenId: input.tokenId, createdAt: createdAt.getTime(), expiresAt: Date.parse(input.expiresAt) };
    const beforeExpiryMs = leader.expiresAt - Date.parse(input.dueAt);
    const range = candidateExpiries(leader, { kind: input.kind, beforeExpiryMs }, windowMs, now.getTime());
    const rows = await registry.findTokensOfUserExpiringBetween(db, {
      userId,
      excludeTokenId: input.tokenId,
      from: new Date(range.from),
      to: new Date(range.to),
    });
    const candidates = rows.map((row) => ({
      tokenId: row.id,
      createdAt: row.createdAt.getTime(),
      expiresAt: row.expiredAt.getTime(),
      revoked: row.revoked,
    }));
    if (input.kind === 'warning') {
      return { members: warningDigest(leader, candidates, beforeExpiryMs, windowMs, now.getTime()) };
    }
    const taken = await tokensWithRow(db, [input.tokenId, ...candidates.map((c) => c.tokenId)], input.reminder);
    if (taken.has(input.tokenId)) return { members: [] }; // covered or claimed already: the claim says which
    const pending = candidates.filter((c) => !taken.has(c.tokenId));
    // Only a token that may still go out is worth waiting for; a revoked one is recorded with its reason.
    const plan = expiredDigest(leader, pending.filter((c) => !c.revoked), windowMs, now.getTime(), input.waited === true);
    if ('waitUntil' in plan) return { waitUntil: new Date(plan.waitUntil).toISOString() };
    return { members: (expiredDigest(leader, pending, windowMs, now.getTime(), true) as { group: DigestToken[] }).group };
  }

  async function sendDigest(input: SendReminderInput): Promise<DeliverResult> {
    const ref: ReminderRef = { tokenId: input.tokenId, reminder: input.reminder, dueAt: input.dueAt };
    const leaderRecipient = await registry.findRecipient(db, input.tokenId);
    // A token that is gone has no user to group by: the single send records it.
    if (!leaderRecipient) return sendOne(input);
    const now = await clock.now();
    const chosen = await chooseMembers(input, leaderRecipient.token.userId, leaderRecipient.token.createdAt, now);
    if ('waitUntil' in chosen) {
      log.info('expired notice waits for the user\'s other tokens', { tokenId: input.tokenId, until: chosen.waitUntil });
      return chosen;
    }
    const beforeExpiryMs = Date.parse(input.expiresAt) - Date.parse(input.dueAt);
    // The leader's part first; each part has its own key, so a lost answer is looked up part by part.
    const key = dedupeKey(ref);
    const members: DigestRow[] = chosen.members.map((token, i) => ({
      tokenId: token.tokenId,
      dueAt: new Date(token.expiresAt - beforeExpiryMs).toISOString(),
      digest: partKey(key, Math.floor((i + 1) / DIGEST_MAX_TOKENS)),
    }));

    const claim = await claimDigest(db, leaderRecipient.token.userId, ref, CLAIM_LEASE_MS, async () => members);
    if (claim.kind === 'busy') {
      throw reminderBusy('another attempt at this reminder, or another token\'s digest, is still running', claim.leaseMs);
    }
    if (claim.kind === 'final') {
      const { digest, sentByTokenId } = claim.row;
      return finalOutcome(claim.row, { digest, sentByTokenId: sentByTokenId ?? undefined });
    }

    let rows = claim.rows;
    const own = rows.find((r) => r.tokenId === input.tokenId);
    if (claim.attempts > 1 && own && !isPartOf(own.digest, key)) {
      // This row was in another token's digest whose attempt died: that email went out, or it goes alone now.
      const earlier = await findSent(own.digest);
      if (earlier) {
        await markDigestSent(db, own.digest, earlier, { now, waited: false });
        return { outcome: 'sent', messageId: earlier.messageId, digest: own.digest };
      }
      rows = [{ ...own, digest: await rekeyDigestRow(db, ref) }];
    }

    let result: SendReminderResult | undefined;
    for (const [part, partRows] of groupByPart(rows)) {
      const hasLeader = partRows.some((r) => r.tokenId === input.tokenId);
      const outcome = claim.attempts > 1 ? await findSentPart(part, now, input.waited === true) : undefined;
      const partResult = outcome ?? (await sendPart(input, part, partRows, now, beforeExpiryMs, hasLeader));
      if (hasLeader) result = partResult;
    }
    return result ?? { outcome: 'skipped', reason: 'token-deleted' };
  }

  async function findSent(key: string): Promise<Delivery | null> {
    return mailer.findSent(key).catch((err: unknown) => {
      throw asRetryable(asMailError(err));
    });
  }

  /** After a retry: a part an earlier attempt got accepted is recorded, not sent again. */
  async function findSentPart(part: string, now: Date, waited: boolean): Promise<SendReminderResult | undefined> {
    const earlier = await findSent(part);
    if (!earlier) return undefined;
    const tokenIds = await markDigestSent(db, part, earlier, { now, waited });
    log.info('digest was sent by an earlier attempt', { digest: part, tokenIds, messageId: earlier.messageId });
    return { outcome: 'sent', messageId: earlier.messageId, digest: part };
  }

  /** Re-reads every token of one email, records why each one left out was, sends the rest, records them. */
  async function sendPart(
    input: SendReminderInput,
    part: string,
    rows: DigestRow[],
    now: Date,
    beforeExpiryMs: number,
    hasLeader: boolean,
  ): Promise<SendReminderResult> {
    const recipients = await registry.findRecipients(db, rows.map((r) => r.tokenId));
    const outcomes = new Map<string, SendReminderResult>();
    const holdBack = async (row: DigestRow, outcome: 'skipped' | 'suppressed', reason: string) => {
      await markUnsent(db, { tokenId: row.tokenId, reminder: input.reminder, dueAt: row.dueAt }, { status: outcome, reason });
      log.info(`reminder ${outcome}`, { tokenId: row.tokenId, reminder: input.reminder, reason, digest: part });
      countEmail(outcome, reason);
      outcomes.set(row.tokenId, { outcome, reason });
    };

    const going: DigestRow[] = [];
    for (const row of rows) {
      const recipient = recipients.get(row.tokenId);
      const token = recipient?.token;
      // The leader's expiry is the one its workflow sleeps on; another's, the one its row was claimed for.
      const expected = row.tokenId === input.tokenId ? Date.parse(input.expiresAt) : Date.parse(row.dueAt) + beforeExpiryMs;
      if (!token) await holdBack(row, 'skipped', 'token-deleted');
      else if (token.revoked) await holdBack(row, 'skipped', 'token-revoked');
      else if (!token.expiredAt || token.expiredAt.getTime() !== expected) await holdBack(row, 'skipped', 'expiry-changed');
      else if (input.kind === 'warning' && token.expiredAt.getTime() <= now.getTime()) {
        await holdBack(row, 'skipped', 'token-already-expired');
      } else going.push(row);
    }
    if (going.length === 0) return leaderOutcome(input, outcomes);
    // One owner for the whole group: the address and the staging settings apply to all of it.
    const owner = recipients.get(going[0]!.tokenId);
    const email = owner?.email;
    if (!owner || !email || config.EXPIRY_EMAILS === 'off') {
      for (const row of going) await holdBack(row, 'skipped', email ? 'emails-off' : 'no-verified-email');
      return leaderOutcome(input, outcomes);
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
    });
    const heldBack = suppression(email, config);
    if (heldBack) {
      for (const row of going) await holdBack(row, 'suppressed', heldBack);
      return leaderOutcome(input, outcomes);
    }

    let delivery: Delivery;
    await pace();
    try {
      delivery = await mailer.send({
        from: config.EMAIL_FROM,
        to: email,
        ...rendered,
        tag: `token-expiry-${input.kind}`,
        dedupeKey: part,
        metadata: { token_id: input.tokenId, reminder: input.reminder, tokens: String(going.length) },
        headers: input.kind === 'warning' ? unsubscribeHeaders(owner.token.userId, config, now) : undefined,
      });
    } catch (err) {
      const failure = asMailError(err);
      const why = `${failure.type}: ${failure.message}`;
      if (failure.kind !== 'permanent') {
        await releaseClaim(db, { tokenId: input.tokenId, reminder: input.reminder, dueAt: input.dueAt }, why);
        throw asRetryable(failure);
      }
      // Rejected for good, final at once for every token of the part (the sender's too), as for a single send:
      // a restarted or covered workflow finds the rows failed, not claimable again.
      for (const row of going) {
        await markUnsent(db, { tokenId: row.tokenId, reminder: input.reminder, dueAt: row.dueAt }, { status: 'failed', reason: why });
      }
      countEmail('failed', failure.type);
      if (hasLeader) throw ApplicationFailure.nonRetryable(failure.message, failure.type);
      return leaderOutcome(input, outcomes);
    }
    const covered = await markDigestSent(db, part, delivery, { now, waited: input.waited === true });
    for (const tokenId of covered) {
      outcomes.set(tokenId, { outcome: 'sent', messageId: delivery.messageId, digest: part, sentByTokenId: input.tokenId });
      countEmail('sent', input.kind);
    }
    countDigest(covered.length);
    log.info('digest sent', { tokenId: input.tokenId, reminder: input.reminder, tokenIds: covered, messageId: delivery.messageId });
    return leaderOutcome(input, outcomes);
  }

  return sendDigest;
}

function leaderOutcome(input: SendReminderInput, outcomes: Map<string, SendReminderResult>): SendReminderResult {
  return outcomes.get(input.tokenId) ?? { outcome: 'skipped', reason: 'token-deleted' };
}

/** The leader's key for the first email, then `<key>:part2`, `<key>:part3`, ... */
function partKey(key: string, index: number): string {
  return index === 0 ? key : `${key}:part${index + 1}`;
}

function isPartOf(part: string, key: string): boolean {
  return part === key || part.startsWith(`${key}:part`);
}

function groupByPart(rows: DigestRow[]): Map<string, DigestRow[]> {
  const parts = new Map<string, DigestRow[]>();
  for (const row of rows) parts.set(row.digest, [...(parts.get(row.digest) ?? []), row]);
  return parts;
}

/** token_expiry_digest_emails and token_expiry_digest_tokens: emails sent, and the tokens they covered. */
function countDigest(tokens: number): void {
  metricMeter.createCounter('token_expiry_digest_emails', 'emails', 'Reminder emails sent').add(1);
  metricMeter.createCounter('token_expiry_digest_tokens', 'tokens', 'Tokens covered by reminder emails').add(tokens);
}
