// What the workflow and its callers share. The workflow bundle imports this file, so it stays free
// of Node built-ins and I/O.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';

export const DEFAULT_TASK_QUEUE = 'token-expiry';

export function tokenExpiryWorkflowId(tokenId: string): string {
  return `token-expiry-${tokenId}`;
}

/** A warning that goes out `beforeExpiryMs` before the token expires; `key` is its label, e.g. "7d". */
export interface ReminderSpec {
  key: string;
  beforeExpiryMs: number;
}

export const EXPIRED_REMINDER_KEY = 'expired';

/** Only ids and dates: the owner's address is looked up when an email is sent. */
export interface TokenExpiryInput {
  tokenId: string;
  createdAt: string;
  expiresAt: string;
  reminders: ReminderSpec[];
  expiredNotice: boolean;
}

export type ReminderKind = 'warning' | 'expired';
/** suppressed: rendered but held back on purpose (EXPIRY_EMAILS=dry-run, or not on the staging allowlist). */
export type ReminderOutcome = 'sent' | 'skipped' | 'failed' | 'suppressed';

export interface ReminderStatus {
  key: string;
  kind: ReminderKind;
  dueAt: string;
  outcome?: ReminderOutcome;
  reason?: string;
  messageId?: string;
  /** Workflow time at which the outcome was known. */
  at?: string;
}

export type TokenExpiryState = 'waiting' | 'sending' | 'completed' | 'cancelled';

export interface TokenExpiryStatus {
  tokenId: string;
  expiresAt: string;
  state: TokenExpiryState;
  nextReminder: string | null;
  nextDueAt: string | null;
  reminders: ReminderStatus[];
}

export const statusQuery = defineQuery<TokenExpiryStatus>('status');

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
