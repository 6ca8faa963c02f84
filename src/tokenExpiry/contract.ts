// What the token expiry workflow shares with its activities and its callers: ids, inputs, outcomes, the
// status query and the search attributes. The workflow bundle imports this file: no Node built-ins, no I/O.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';

/**
 * `instance` is the id the database's first `migrate` made (src/db/instance.ts): registries and environments
 * sharing one namespace, whose token ids overlap, never share a workflow id.
 */
export function tokenExpiryWorkflowId(tokenId: string, instance: string): string {
  return `token-expiry-${instance}-${tokenId}`;
}

/**
 * The task queue an instance's workflows and activities run on: TEMPORAL_TASK_QUEUE with the instance id
 * appended, so that no two instances share a queue (another's worker would read its own database for them).
 */
export function instanceTaskQueue(queue: string, instance: string): string {
  return `${queue}-${instance}`;
}

/** The activities' answer to an input of another instance (a worker polling the wrong queue): final, never retried. */
export const WRONG_INSTANCE = 'WrongInstance';

/** Memo key: the token's creation time (ISO), which with its expiry tells two tokens with one id apart. */
export const TOKEN_CREATED_AT_MEMO = 'tokenCreatedAt';

/** A warning that goes out `beforeExpiryMs` before the token expires; `key` is its label, e.g. "7d". */
export interface ReminderSpec {
  key: string;
  beforeExpiryMs: number;
}

export const EXPIRED_REMINDER_KEY = 'expired';

/** Only ids and dates: the owner's address is looked up when an email is sent. */
export interface TokenExpiryInput {
  /** The instance whose database holds the token: every activity checks it against its own. */
  instance: string;
  tokenId: string;
  createdAt: string;
  expiresAt: string;
  reminders: ReminderSpec[];
  expiredNotice: boolean;
  /** EXPIRY_SPREAD in ms: how much earlier a warning may go out (see spread.ts); absent in older runs. */
  spreadMs?: number;
  /**
   * Due times the owner's waking hours moved, by reminder key (ISO UTC): a warning earlier, the expired notice later
   * (userPlan.ts computes them from the owner's time zone). Absent: every reminder at its own due time.
   */
  wakingDueAt?: Record<string, string>;
}

export const REMINDER_KINDS = ['warning', 'expired'] as const;
export type ReminderKind = (typeof REMINDER_KINDS)[number];

/**
 * Every state of a (token, reminder) row, in the notification log and the API. `sending` is a claim held
 * by one attempt; the others are final. suppressed: rendered but held back on purpose (EXPIRY_EMAILS=dry-run,
 * or not on the staging allowlist).
 */
export const REMINDER_OUTCOMES = ['sent', 'skipped', 'failed', 'suppressed'] as const;
export type ReminderOutcome = (typeof REMINDER_OUTCOMES)[number];
/** What a reminder that did not go out is recorded as. */
export type UnsentOutcome = Exclude<ReminderOutcome, 'sent'>;
export const NOTIFICATION_STATUSES = ['sending', ...REMINDER_OUTCOMES] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/**
 * Why a row went out when it did. due: at its own due time (or later, if its workflow was behind).
 * early-for-digest: in another token's email, before its own due time (at most the allowance).
 * waited-for-digest: an "expired" notice held back for the user's other tokens expiring inside the window.
 */
export const DIGEST_TIMINGS = ['due', 'early-for-digest', 'waited-for-digest'] as const;
export type DigestTiming = (typeof DIGEST_TIMINGS)[number];

export interface ReminderStatus {
  key: string;
  kind: ReminderKind;
  dueAt: string;
  outcome?: ReminderOutcome;
  reason?: string;
  messageId?: string;
  /** The email's dedupe key: the same for every token one digest covered (EXPIRY_DIGEST_WINDOW). */
  digest?: string;
  /** The token whose workflow sent that email. */
  sentByTokenId?: string;
  /** Workflow time at which the outcome was known. */
  at?: string;
}

export const TOKEN_EXPIRY_STATES = ['waiting', 'sending', 'completed', 'cancelled'] as const;
export type TokenExpiryState = (typeof TOKEN_EXPIRY_STATES)[number];

export interface TokenExpiryStatus {
  tokenId: string;
  expiresAt: string;
  state: TokenExpiryState;
  nextReminder: string | null;
  nextDueAt: string | null;
  reminders: ReminderStatus[];
}

export const statusQuery = defineQuery<TokenExpiryStatus>('status');

/** A running workflow's new plan (`token-expiry replan`), and the token's new expiry when it changed. */
export interface ReplanInput {
  reminders: ReminderSpec[];
  expiredNotice: boolean;
  /** Absent: the expiry stays as it is. */
  expiresAt?: string;
  /** As TokenExpiryInput's, for the new plan and expiry; absent: none moved (a replan carries the whole plan). */
  wakingDueAt?: Record<string, string>;
}

/** What a replan changed, by reminder key; reminders already sent or recorded never change. */
export interface ReplanResult {
  /**
   * New in the plan, or back in it after an earlier replan dropped them (those due before the token was
   * created are recorded as created-inside-window).
   */
  added: string[];
  /** No longer in the plan: recorded as skipped, dropped-from-plan, and not sent. */
  dropped: string[];
  /** Still in the plan with a new due time (the expiry or the owner's waking hours changed). */
  moved: string[];
  expiresAt: string;
}

export const replanUpdate = defineUpdate<ReplanResult, [ReplanInput]>('replan');

/**
 * Why the replan update's validator refused a plan (the ApplicationFailure's type); a refused update
 * leaves nothing in the workflow's history. PlanUnchanged: the run has this plan already.
 * InvalidPlan: the input is malformed.
 */
export type ReplanRefusal = 'PlanUnchanged' | 'InvalidPlan';

/** The notification log's reason for a reminder that a replan took out of the plan before it was sent. */
export const DROPPED_FROM_PLAN = 'dropped-from-plan';

/** One reminder of one token: what the send activity is asked to deliver. */
export interface SendReminderInput {
  instance: string;
  tokenId: string;
  reminder: string;
  kind: ReminderKind;
  dueAt: string;
  expiresAt: string;
  /** An "expired" notice that already waited for the user's other tokens (DeliverResult.waitUntil): send now. */
  waited?: boolean;
}

/** A send that ended: delivered, or held back on purpose. A failure arrives as an ApplicationFailure. */
export interface SendReminderResult {
  outcome: Exclude<ReminderOutcome, 'failed'>;
  reason?: string;
  messageId?: string;
  digest?: string;
  sentByTokenId?: string;
}

/**
 * What a send activity answers: an outcome, or, for an "expired" notice that should go out with the
 * user's other tokens expiring soon after it, the time to call again with `waited: true`.
 */
export type DeliverResult = SendReminderResult | { waitUntil: string };

/**
 * An email Postmark accepted whose record the send could not write (failure type SentNotRecorded, in its
 * details): the workflow records it with recordSent, retried until the database answers. Ids and times only.
 */
export interface UnrecordedSend {
  /** The instance whose database holds the rows: every activity checks it against its own. */
  instance: string;
  /** The claim that sent it: the record is conditional on it. */
  fence: string;
  digest: string;
  messageId: string;
  submittedAt: string;
  now: string;
  waited: boolean;
  tokenId: string;
  reminder: string;
  /** The send's reminder, for its webhook once the record is written. */
  kind: ReminderKind;
  dueAt: string;
  expiresAt: string;
}

/** A reminder the workflow meant to record as unsent that the log has as sent already (another token's digest). */
export type SentElsewhere = SendReminderResult & { reminder: string; outcome: 'sent' };

/** Reminders the workflow decided not to send, or gave up on. */
export interface RecordOutcomesInput {
  instance: string;
  tokenId: string;
  outcomes: { reminder: string; dueAt: string; status: 'skipped' | 'failed'; reason: string }[];
}

/** Where activities read the time: the system's, or in tests the time-skipping server's (a call away). */
export interface Clock {
  now(): Promise<Date>;
}

export const searchAttributes = {
  tokenId: defineSearchAttributeKey('TokenId', SearchAttributeType.KEYWORD),
  expiresAt: defineSearchAttributeKey('TokenExpiresAt', SearchAttributeType.DATETIME),
  nextReminderAt: defineSearchAttributeKey('NextReminderAt', SearchAttributeType.DATETIME),
  state: defineSearchAttributeKey('ExpiryState', SearchAttributeType.KEYWORD),
  /** The failure type of the latest reminder that could not be sent, e.g. PostmarkInactiveRecipient. */
  lastFailure: defineSearchAttributeKey('ReminderFailure', SearchAttributeType.KEYWORD),
} as const;

/** `temporal server start-dev --search-attribute` and the test server need these registered. */
export const searchAttributeRegistrations: { name: string; type: 'Keyword' | 'Datetime' }[] = Object.values(
  searchAttributes,
).map(({ name, type }) => ({ name, type: type === SearchAttributeType.DATETIME ? 'Datetime' : 'Keyword' }));
