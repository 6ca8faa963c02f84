import type { Pool } from 'pg';
import type { Config } from '../src/config';
import type {
  Clock,
  DeliverResult,
  RecordOutcomesInput,
  SentElsewhere,
  SendReminderInput,
  SendReminderResult,
  UnrecordedSend,
} from '../src/tokenExpiry/contract';
import { markUnsent } from '../src/db/notifications';
import type { Mailer } from '../src/email/postmarkMailer';
import type { SendPacer } from '../src/email/sendPacer';
import { countEmail, createSendPipeline } from './sendEmail';
import type { Resolve } from '../src/webhooks/address';
import type { RegistryAdapter } from '../src/registry/adapter';

export interface ActivityDeps {
  db: Pool;
  registry: RegistryAdapter;
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
    | 'POSTMARK_SEARCH_LAG'
    | 'API_PUBLIC_URL'
    | 'UNSUBSCRIBE_SECRET'
    | 'PREFERENCES_URL'
    | 'EXPIRY_REMINDERS'
    | 'EXPIRED_NOTICE'
    | 'EXPIRY_REMINDER_MENU'
    | 'WEBHOOK_ALLOW_PRIVATE'
    | 'WEBHOOK_ALLOW_HTTP'
    | 'WEBHOOK_TIMEOUT'
  >;
  /** The resolver webhook deliveries check addresses from; the system's by default. */
  resolve?: Resolve;
}

export function createActivities(deps: ActivityDeps) {
  const { db, config } = deps;
  const { sendReminder, recordUnrecordedSend } = createSendPipeline(deps);

  return {
    /** One email for this reminder (and, with EXPIRY_DIGEST_WINDOW, the user's others falling due with it), then its webhook. */
    sendReminder: (input: SendReminderInput): Promise<DeliverResult> => sendReminder(input),

    /**
     * The first attempt, run as a local activity. Null when sends are capped: only the queued activity
     * goes through Temporal's limit across all workers.
     */
    async sendReminderFirstTry(input: SendReminderInput): Promise<DeliverResult | null> {
      return config.EMAIL_MAX_PER_SECOND ? null : sendReminder(input);
    },

    /** Records an email Postmark accepted whose record the send could not write (SentNotRecorded). */
    recordSent: (unrecorded: UnrecordedSend): Promise<SendReminderResult> => recordUnrecordedSend(unrecorded),

    /**
     * Writes reminders the workflow decided not to send, or gave up on, into the log; answers those the log
     * had as sent already (in another token's digest), which the workflow records as sent instead.
     */
    async recordOutcomes({ tokenId, outcomes }: RecordOutcomesInput): Promise<SentElsewhere[]> {
      const sent: SentElsewhere[] = [];
      for (const { reminder, dueAt, status, reason } of outcomes) {
        const kept = await markUnsent(db, { tokenId, reminder, dueAt }, { status, reason });
        if (kept?.status === 'sent') {
          sent.push({ reminder, outcome: 'sent', messageId: kept.providerMessageId ?? undefined, digest: kept.digest, sentByTokenId: kept.sentByTokenId ?? undefined });
        }
        // A failure's reason starts with its type: "PostmarkInactiveRecipient: ...".
        else if (status === 'failed') countEmail('failed', reason.split(':', 1)[0] as string);
      }
      return sent;
    },
  };
}
