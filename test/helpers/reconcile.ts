/**
 * The end of every fault scenario: the fake Postmark's log, the notification table and each workflow's
 * own result must tell the same story. Every reminder that fell due went out exactly once (one message
 * with its dedupe key, its row `sent` with that MessageID) or has a recorded reason the design allows;
 * nothing went out that the table does not know about.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { tokenExpiryWorkflowId, type TokenExpiryStatus } from '../../src/tokenExpiry/contract';
import type { SentMessage } from '../../scripts/devtools/fakePostmark';
import { TEST_INSTANCE } from './database';

type Expectation =
  /**
   * A verified owner: each reminder sent, or skipped for a reason the design gives: a later one says it
   * (late), the token was made inside it, or a warning could only go out once the token had expired.
   */
  | 'delivered'
  /** The owner has no verified address: each reminder skipped for that reason. */
  | 'no-verified-email'
  /** Postmark refuses the address for good: each reminder failed, recorded with the failure type. */
  | 'inactive-recipient'
  /** Revoked while waiting: the workflow ends cancelled and nothing goes out. */
  | 'revoked';

export interface TokenUnderTest {
  id: string;
  /** The owner's address, as a sent message must carry it. */
  email: string;
  createdAt: Date;
  expiresAt: Date;
  expect: Expectation;
}

export interface ReconciledRow {
  tokenId: string;
  reminder: string;
  dueAt: Date;
  status: string;
  reason: string | null;
  attempts: number;
  lastError: string | null;
  messageId: string | null;
  dedupeKey: string;
}

export interface Reconciliation {
  rows: ReconciledRow[];
  /** Messages the fake accepted. */
  messages: number;
  /** Everything that does not add up; empty when the scenario kept its promises. */
  problems: string[];
}

interface RawRow extends ReconciledRow {
  claimedUntil: Date | null;
  submittedAt: Date | null;
  updatedAt: Date;
}

export async function reconcile(opts: {
  db: Pool;
  client: Client;
  sent: SentMessage[];
  tokens: TokenUnderTest[];
}): Promise<Reconciliation> {
  const problems: string[] = [];
  const byId = new Map(opts.tokens.map((token) => [token.id, token]));

  const { rows } = await opts.db.query<RawRow>(
    `SELECT token_id::text AS "tokenId", reminder, due_at AS "dueAt", status, reason, attempts,
            last_error AS "lastError", provider_message_id AS "messageId", dedupe_key AS "dedupeKey",
            claimed_until AS "claimedUntil", submitted_at AS "submittedAt", updated_at AS "updatedAt"
       FROM expiry_notifications ORDER BY token_id, due_at`,
  );

  // The fake's side: one message per dedupe key, each for a token of this scenario.
  const messagesByKey = new Map<string, SentMessage[]>();
  for (const message of opts.sent) {
    const key = message.Metadata.dedupe_key;
    if (!key) {
      problems.push(`message ${message.MessageID} has no dedupe_key in its Metadata`);
      continue;
    }
    messagesByKey.set(key, [...(messagesByKey.get(key) ?? []), message]);
  }
  for (const [key, messages] of messagesByKey) {
    if (messages.length > 1) problems.push(`${key}: sent ${messages.length} times (${messages.map((m) => m.MessageID).join(', ')})`);
    const tokenId = key.split(':')[1] ?? '';
    if (!byId.has(tokenId)) problems.push(`${key}: a message for token ${tokenId}, which this scenario did not make`);
    if (!rows.some((row) => row.dedupeKey === key && row.status === 'sent')) {
      problems.push(`${key}: Postmark accepted it, but no row records it as sent`);
    }
  }

  // The table's side: every row final, every sent row backed by exactly that message.
  for (const row of rows) {
    const where = `token ${row.tokenId} reminder ${row.reminder}`;
    const token = byId.get(row.tokenId);
    if (!token) problems.push(`${where}: a row for a token this scenario did not make`);
    if (row.status === 'sending') problems.push(`${where}: still 'sending' (attempts ${row.attempts}, last error ${row.lastError})`);
    if (row.claimedUntil !== null) problems.push(`${where}: still claimed until ${row.claimedUntil.toISOString()}`);
    const messages = messagesByKey.get(row.dedupeKey) ?? [];
    if (row.status === 'sent') {
      const message = messages[0];
      if (messages.length !== 1 || !message) {
        problems.push(`${where}: row says sent, the fake has ${messages.length} message(s) with key ${row.dedupeKey}`);
      } else {
        if (message.MessageID !== row.messageId) problems.push(`${where}: row has MessageID ${row.messageId}, the fake ${message.MessageID}`);
        if (token && message.To !== token.email) problems.push(`${where}: sent to another address than the owner's`);
      }
      if (row.submittedAt === null) problems.push(`${where}: sent without submitted_at`);
    } else {
      if (!row.reason) problems.push(`${where}: ${row.status} without a reason`);
      if (messages.length > 0) problems.push(`${where}: ${row.status} (${row.reason}), yet the fake has ${messages.length} message(s)`);
    }
  }

  // Each workflow's own account, against the table and what its token's case allows.
  const { rows: flags } = await opts.db.query<{ id: string; notified: boolean }>(
    'SELECT id::text, expiry_notification_at IS NOT NULL AS notified FROM api_tokens WHERE id = ANY($1::bigint[])',
    [opts.tokens.map((t) => t.id)],
  );
  for (const token of opts.tokens) {
    const tokenRows = rows.filter((row) => row.tokenId === token.id);
    const where = `token ${token.id} (${token.expect})`;
    const handle = opts.client.workflow.getHandle(tokenExpiryWorkflowId(token.id, TEST_INSTANCE));
    const execution = (await handle.describe()).status.name;
    const anySent = tokenRows.some((row) => row.status === 'sent');
    // The log is the record: the registry's own column (crates.io's expiry job's) is never written.
    if (flags.find((f) => f.id === token.id)?.notified !== false) {
      problems.push(`${where}: api_tokens.expiry_notification_at was written (or the token is gone)`);
    }

    if (token.expect === 'revoked') {
      if (execution !== 'CANCELLED') problems.push(`${where}: workflow ${execution}, expected CANCELLED`);
      if (anySent) problems.push(`${where}: an email went out for a revoked token`);
      continue;
    }
    if (execution !== 'COMPLETED') {
      problems.push(`${where}: workflow ${execution}, expected COMPLETED`);
      continue;
    }
    const result = (await handle.result()) as TokenExpiryStatus;
    if (result.state !== 'completed') problems.push(`${where}: workflow state ${result.state}`);
    if (tokenRows.length !== result.reminders.length) {
      problems.push(`${where}: ${result.reminders.length} reminders planned, ${tokenRows.length} rows`);
    }
    for (const reminder of result.reminders) {
      const at = `${where} reminder ${reminder.key}`;
      const row = tokenRows.find((r) => r.reminder === reminder.key);
      if (!row) {
        problems.push(`${at}: no row`);
        continue;
      }
      if (row.dueAt.getTime() !== Date.parse(reminder.dueAt)) problems.push(`${at}: row due ${row.dueAt.toISOString()}, workflow ${reminder.dueAt}`);
      if (row.status !== reminder.outcome) problems.push(`${at}: row ${row.status}, workflow ${reminder.outcome}`);
      if (reminder.outcome === 'sent' && reminder.messageId !== row.messageId) {
        problems.push(`${at}: workflow MessageID ${reminder.messageId}, row ${row.messageId}`);
      }
      if (reminder.outcome !== 'sent' && (reminder.reason ?? null) !== row.reason) {
        problems.push(`${at}: workflow reason "${reminder.reason}", row "${row.reason}"`);
      }
      const problem = judgeOutcome(token, reminder, result, row);
      if (problem) problems.push(`${at}: ${problem}`);
    }
  }

  return {
    rows: rows.map(({ claimedUntil: _c, submittedAt: _s, updatedAt: _u, ...row }) => row),
    messages: opts.sent.length,
    problems,
  };
}

/** Whether one reminder's outcome is one the design allows for this token; a message saying why not. */
function judgeOutcome(
  token: TokenUnderTest,
  reminder: TokenExpiryStatus['reminders'][number],
  result: TokenExpiryStatus,
  row: RawRow,
): string | null {
  const expect = token.expect as Exclude<Expectation, 'revoked'>;
  const reason = reminder.reason ?? '';
  // Design rules that hold for every token: made inside the reminder's window, late and said by a later
  // one, or a warning that could only be sent once the token had expired.
  if (reminder.outcome === 'skipped' && reason === 'token-already-expired') {
    return reminder.kind === 'warning' && row.updatedAt >= token.expiresAt
      ? null
      : 'token-already-expired, yet recorded before the token expired';
  }
  if (reminder.outcome === 'skipped' && reason === 'created-inside-window') {
    return Date.parse(reminder.dueAt) < token.createdAt.getTime() ? null : 'created-inside-window, yet due after the token was made';
  }
  const superseded = /^superseded-by-(.+)$/.exec(reason);
  if (reminder.outcome === 'skipped' && superseded) {
    const later = result.reminders.find((r) => r.key === superseded[1]);
    if (!later || Date.parse(later.dueAt) <= Date.parse(reminder.dueAt)) return `superseded by ${superseded[1]}, which is not a later reminder`;
    return later.outcome === undefined ? `superseded by ${later.key}, which has no outcome` : null;
  }
  switch (expect) {
    case 'delivered':
      return reminder.outcome === 'sent' ? null : `expected sent, got ${reminder.outcome} (${reason})`;
    case 'inactive-recipient':
      return reminder.outcome === 'failed' && reason.startsWith('PostmarkInactiveRecipient: ')
        ? null
        : `expected failed as PostmarkInactiveRecipient, got ${reminder.outcome} (${reason})`;
    case 'no-verified-email':
      return reminder.outcome === 'skipped' && reason === 'no-verified-email'
        ? null
        : `expected skipped as no-verified-email, got ${reminder.outcome} (${reason})`;
  }
}

/** One line per row, for the scenario's report file and failure messages. */
export function describeRows(rows: ReconciledRow[]): string[] {
  return rows.map(
    (row) =>
      `token ${row.tokenId} ${row.reminder.padEnd(7)} ${row.status.padEnd(9)} attempts=${row.attempts}` +
      `${row.reason ? ` reason=${row.reason}` : ''}${row.lastError ? ` last_error=${row.lastError.slice(0, 80)}` : ''}`,
  );
}
