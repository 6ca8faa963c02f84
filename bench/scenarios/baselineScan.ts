// The crates.io design, on our table and our fake Postmark: a periodic job that finds tokens expiring
// within 3 days and not yet notified, and for each one in turn looks up its owner, sends one email and
// marks the token (rust-lang/crates.io, src/worker/jobs/expiry_notification.rs).
import type { Pool } from 'pg';
import { builtinRegistry } from '../../src/registry/builtin';
import type { Mailer } from '../../src/email/postmarkMailer';
import { renderReminderEmail } from '../../src/email/reminderEmail';

/** Their query, as diesel writes it: EXPIRY_THRESHOLD = 3 days, MAX_ROWS = 10000. */
export const CRATES_IO_SCAN = `
  SELECT * FROM api_tokens
   WHERE NOT revoked AND expired_at IS NOT NULL AND expired_at > now() AND expired_at < now() + interval '3 days'
     AND expiry_notification_at IS NULL
   ORDER BY expired_at ASC
   LIMIT 10000`;

/** The partial index that serves the scan (crates.io has none for it). */
export const CRATES_IO_SCAN_INDEX = `
  CREATE INDEX api_tokens_expiry_scan ON api_tokens (expired_at) WHERE NOT revoked AND expiry_notification_at IS NULL`;

export interface ScanResult {
  found: number;
  sent: number;
  errors: number;
}

/** One run of the job: one query, then one token at a time, as theirs does. */
export async function scanAndSend(db: Pool, mailer: Mailer): Promise<ScanResult> {
  const { rows } = await db.query<{ id: string }>(`SELECT id::text FROM (${CRATES_IO_SCAN}) due`);
  let sent = 0;
  let errors = 0;
  for (const { id } of rows) {
    try {
      const recipient = await builtinRegistry.findRecipient(db, id);
      if (recipient?.email && recipient.token.expiredAt) {
        const rendered = renderReminderEmail({
          registryName: 'crates.io',
          registryUrl: 'https://crates.io',
          login: recipient.greeting,
          token: { ...recipient.token, expiresAt: recipient.token.expiredAt },
          now: new Date(),
          // crates.io's email has no say in it; the same links as ours, so the two render alike.
          choices: { preferencesUrl: 'https://crates.io/settings/tokens', unsubscribeUrl: null, warningsOff: false },
        });
        await mailer.send({
          from: 'crates.io <noreply@crates.io>',
          to: recipient.email,
          ...rendered,
          tag: 'token-expiry-warning',
          dedupeKey: `crates-io-scan:${id}`,
          metadata: { token_id: id },
        });
        sent++;
      }
      // Marked whether or not an email went out, so that the token is not found again.
      await db.query('UPDATE api_tokens SET expiry_notification_at = now() WHERE id = $1', [id]);
    } catch {
      // Theirs logs the error and goes on to the next token; the token stays unmarked for the next run.
      errors++;
    }
  }
  return { found: rows.length, sent, errors };
}
