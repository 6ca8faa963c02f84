// What the service needs from a registry's own tables, and nothing else: every read of the registry's
// users, addresses and tokens goes through one of these adapters (src/registry/<registry>.ts).
import type { Queryable } from '../db/transaction';

/** A registry token as the service sees it; the secret's hash is never read. */
export interface TokenRow {
  id: string;
  userId: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revoked: boolean;
  crateScopes: string[] | null;
  endpointScopes: string[] | null;
  expiredAt: Date | null;
  /** From this service's bookkeeping (expiry_workflows): when its workflow was last started; null if never. */
  expiryWorkflowStartedAt: Date | null;
}

export interface UserRow {
  id: string;
  login: string;
}

/** Whom a reminder goes to, read at send time so that a changed address is used. */
export interface ReminderRecipient {
  token: TokenRow;
  /** The name the email greets (a login). */
  greeting: string;
  /** Null when the owner has no verified address. */
  email: string | null;
}

interface TokenPage {
  /** The last id of the previous page; null for the first page. */
  afterId: string | null;
  limit: number;
  /** The caller's clock (under the time-skipping test server it runs ahead of the database's now()). */
  now: Date;
}

interface StoppedFilter {
  /** Only tokens expiring by then; all future ones when null. */
  until: Date | null;
  /** Only tokens recorded as started before then; all when null. */
  recordedBefore: Date | null;
}

export interface NewTokenRow {
  userId: string;
  hash: Buffer;
  name: string;
  expiredAt: Date | null;
  crateScopes: string[] | null;
  endpointScopes: string[] | null;
}

/** The writes a registry allows only when this service owns its tokens (builtin). */
export interface TokenWriter {
  insertUser(db: Queryable, user: { login: string; email: string; verified: boolean }): Promise<UserRow>;
  insertToken(db: Queryable, token: NewTokenRow): Promise<TokenRow>;
  /** Marks an active token revoked; null when it was revoked already (or is not there). */
  revokeActiveToken(db: Queryable, id: string): Promise<TokenRow | null>;
  /** Marks the token revoked; returns it as it is now, or null when there is no such token. */
  revokeToken(db: Queryable, id: string): Promise<TokenRow | null>;
}

/** A token a digest may cover: who owns it is the key (`userId`), the rule reads only its dates. */
export interface DigestCandidateRow {
  id: string;
  userId: string;
  createdAt: Date;
  expiredAt: Date;
  revoked: boolean;
}

/** A column the service reads, for `registry-sql`'s grants. */
interface ColumnGrants {
  table: string;
  columns: string[];
}

export interface RegistryAdapter {
  /** The REGISTRY_SCHEMA value. */
  name: string;
  /** Whether `id` can be a token id of this registry at all (its id column's range); others are not found. */
  isTokenId(id: string): boolean;
  findToken(db: Queryable, id: string): Promise<TokenRow | null>;
  /** The current state of a batch of tokens (missing ids are left out). */
  findTokens(db: Queryable, ids: string[]): Promise<TokenRow[]>;
  /** The token and whom to greet and write to; null when the token is gone. */
  findRecipient(db: Queryable, tokenId: string): Promise<ReminderRecipient | null>;
  /** Several tokens and whom to greet and write to, re-read when one email covers them all; gone ones are missing. */
  findRecipients(db: Queryable, tokenIds: string[]): Promise<Map<string, ReminderRecipient>>;
  /**
   * The user's other tokens whose expiry falls in [from, to], revoked ones too (a digest records why it left
   * them out). Only tokens whose workflow is on record: the others have no reminder to share yet.
   */
  findTokensOfUserExpiringBetween(
    db: Queryable,
    query: { userId: string; excludeTokenId: string; from: Date; to: Date },
  ): Promise<DigestCandidateRow[]>;
  /** The user a registry request acts for, by the login its backend names. */
  findUserByLogin(db: Queryable, login: string): Promise<UserRow | null>;
  /** A user's tokens as crates.io lists them: not revoked, newest first, expired ones only within `expiredDays`. */
  listTokensOfUser(db: Queryable, userId: string, expiredDays: number): Promise<TokenRow[]>;
  /** The highest token id now (discovery's next mark); null when there are no tokens. */
  maxTokenId(db: Queryable): Promise<string | null>;
  /** Active tokens with a future expiry whose workflow was never started (or never recorded as started). */
  findTokensWithoutWorkflow(db: Queryable, page: TokenPage): Promise<TokenRow[]>;
  /**
   * Tokens whose workflow is on record: active ones with a future expiry (it may have been stopped since),
   * and revoked ones whose workflow is not yet on record as cancelled.
   */
  findStoppedCandidates(db: Queryable, page: TokenPage & StoppedFilter): Promise<TokenRow[]>;
  /** How many tokens each sweep phase will look at. */
  countSweepCandidates(db: Queryable, filter: { now: Date } & StoppedFilter): Promise<{ missing: number; stopped: number }>;
  /** The columns the service reads, table by table: what `registry-sql` grants. */
  reads: ColumnGrants[];
  /** Columns the service must not be able to read however granted (secrets); it refuses to start if it can. */
  secrets: ColumnGrants[];
  /** Present only when the registry lets this service own its tokens. */
  writer?: TokenWriter;
}
