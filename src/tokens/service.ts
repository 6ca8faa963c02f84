// The token lifecycle a registry calls, and the only way into tokens for the CLI and the HTTP API:
// list, get, create, revoke, duplicate ("Regenerate"), rotate and status.
import { createHash, randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { instanceOf, type Config } from '../config';
import { listNotifications, type NotificationRow } from '../db/notifications';
import { listWebhookDeliveries, type WebhookDeliveryRow } from '../db/webhooks';
import { withTransaction } from '../db/transaction';
import { markExpiryWorkflowsCancelled, markExpiryWorkflowsStarted } from '../db/workflows';
import type { NewTokenRow, RegistryAdapter, TokenRow, TokenWriter, UserRow } from '../registry/adapter';
import {
  cancelTokenExpiryWorkflow,
  describeTokenExpiryWorkflow,
  startTokenExpiryWorkflow,
  type ReminderSettings,
  type WorkflowView,
} from '../tokenExpiry/client';
import { tokenExpiryWorkflowId } from '../tokenExpiry/contract';
import { checkExpiry, newTokenInput } from './input';
import { findUserPlans } from '../preferences/plans';

export interface TokenServiceDeps {
  db: Pool;
  registry: RegistryAdapter;
  /** Connected on first use, so that commands that never touch Temporal don't need it. */
  temporal: () => Promise<Client>;
  config: Pick<Config, 'TOKEN_PREFIX'> & ReminderSettings;
  now?: () => Date;
}

/** One problem with a request: where (in the service's field names) and what. */
export interface TokenIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Bad input or an unknown id: the caller's mistake, reported without writing anything. read-only: a write
 * asked of a registry that owns its tokens (REGISTRY_SCHEMA other than builtin).
 */
export class TokenError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'conflict' | 'read-only',
    message: string,
    /** For 'invalid': every problem found, each naming its field. */
    readonly issues: TokenIssue[] = [],
  ) {
    super(message);
  }
}

export interface ExpiryWorkflowResult {
  workflowId: string | null;
  /** Set when the workflow could not be started or cancelled; the sweep finishes the job later. */
  workflowError?: string;
}

export type CreatedToken = { token: TokenRow; secret: string } & ExpiryWorkflowResult;
export type RevokedToken = { token: TokenRow; workflowCancelled: boolean } & ExpiryWorkflowResult;
export interface TokenStatus {
  token: TokenRow;
  workflow: WorkflowView | null;
  notifications: NotificationRow[];
  /** The webhook channel's log: one row per reminder posted (or refused) to the owner's webhook. */
  webhookDeliveries: WebhookDeliveryRow[];
}

/** What a caller asks for, before validation. */
export interface TokenRequest {
  name: string;
  expiresAt: Date | null;
  crateScopes: string[] | null;
  endpointScopes: string[] | null;
}

const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function newSecret(prefix: string): { secret: string; hash: Buffer } {
  // 248 random bits drawn without modulo bias (62 * 4 = 248 < 256).
  const chars: string[] = [];
  while (chars.length < 32) {
    for (const byte of randomBytes(48)) {
      if (byte < 248 && chars.length < 32) chars.push(SECRET_ALPHABET[byte % 62] as string);
    }
  }
  const secret = `${prefix}${chars.join('')}`;
  return { secret, hash: hashSecret(secret) };
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

function invalid(issues: TokenIssue[]): TokenError {
  const [first] = issues;
  return new TokenError('invalid', first ? `${first.path.join('.') || 'token'}: ${first.message}` : 'is invalid', issues);
}

export function createTokenService(deps: TokenServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const { registry } = deps;

  /** The registry's token writes; only a registry that lets this service own its tokens has them. */
  function writer(): TokenWriter {
    if (registry.writer) return registry.writer;
    throw new TokenError(
      'read-only',
      `the registry owns its tokens (REGISTRY_SCHEMA=${registry.name}): create, revoke and rotate them in the registry; ` +
        'token-expiry only reads them and sends their reminders',
    );
  }

  /** The one validation of a new token: its fields, then its expiry against the clock. */
  function validate(request: TokenRequest): Omit<NewTokenRow, 'userId' | 'hash'> {
    const parsed = newTokenInput.safeParse(request);
    if (!parsed.success) {
      throw invalid(parsed.error.issues.map(({ path, message }) => ({ path: path.map((key) => (typeof key === 'number' ? key : String(key))), message })));
    }
    const { name, expiresAt, crateScopes, endpointScopes } = parsed.data;
    const expiryProblem = expiresAt && checkExpiry(expiresAt, now());
    if (expiryProblem) throw invalid([{ path: ['expiresAt'], message: expiryProblem }]);
    return { name, expiredAt: expiresAt, crateScopes, endpointScopes };
  }

  async function startWorkflow(token: TokenRow): Promise<ExpiryWorkflowResult> {
    if (!token.expiredAt || token.revoked) return { workflowId: null };
    try {
      const planOf = await findUserPlans(deps.db, [token.userId], deps.config);
      const workflowId = await startTokenExpiryWorkflow(await deps.temporal(), token, deps.config, now(), planOf(token.userId));
      token.expiryWorkflowStartedAt = await markExpiryWorkflowsStarted(deps.db, [token]);
      return { workflowId };
    } catch (err) {
      return {
        workflowId: tokenExpiryWorkflowId(token.id, instanceOf(deps.config)),
        workflowError: `expiry reminders not scheduled yet (${(err as Error).message}); the sweep will start them`,
      };
    }
  }

  async function cancelWorkflow(token: TokenRow): Promise<ExpiryWorkflowResult & { workflowCancelled: boolean }> {
    if (!token.expiredAt) return { workflowId: null, workflowCancelled: false };
    const instance = instanceOf(deps.config);
    const workflowId = tokenExpiryWorkflowId(token.id, instance);
    try {
      const workflowCancelled = await cancelTokenExpiryWorkflow(await deps.temporal(), token, instance);
      // On record, so the sweep does not look this revoked token's workflow up again.
      if (token.revoked) await markExpiryWorkflowsCancelled(deps.db, [token.id]);
      return { workflowId, workflowCancelled };
    } catch (err) {
      // The revoked flag is already committed: a reminder re-reads it and is skipped.
      return { workflowId, workflowCancelled: false, workflowError: `could not cancel: ${(err as Error).message}` };
    }
  }

  /** The token, if it exists and (when an owner is given) is theirs; another user's token is simply not found. */
  async function requireToken(id: string, owner?: UserRow): Promise<TokenRow> {
    const token = await registry.findToken(deps.db, id);
    if (!token || (owner !== undefined && token.userId !== owner.id)) {
      throw new TokenError('not-found', `no token with id ${JSON.stringify(id)}`);
    }
    return token;
  }

  /** The same owner, name and scopes, and a fresh expiry of the same lifetime as `token`. */
  function duplicateOf(token: TokenRow): Omit<NewTokenRow, 'hash'> {
    const lifetimeMs = token.expiredAt ? token.expiredAt.getTime() - token.createdAt.getTime() : null;
    return {
      userId: token.userId,
      name: token.name,
      crateScopes: token.crateScopes,
      endpointScopes: token.endpointScopes,
      expiredAt: lifetimeMs === null ? null : new Date(now().getTime() + Math.max(lifetimeMs, 60_000)),
    };
  }

  /** Inserts a token with a fresh secret (through `insert`), then starts its workflow. */
  async function issue(
    row: Omit<NewTokenRow, 'hash'>,
    insert = (withHash: NewTokenRow) => writer().insertToken(deps.db, withHash),
  ): Promise<CreatedToken> {
    writer();
    const { secret, hash } = newSecret(deps.config.TOKEN_PREFIX);
    const token = await insert({ ...row, hash });
    return { token, secret, ...(await startWorkflow(token)) };
  }

  return {
    /** The user a request acts for, by login. */
    async user(login: string): Promise<UserRow> {
      const user = await registry.findUserByLogin(deps.db, login);
      if (!user) throw new TokenError('not-found', `no user with login ${JSON.stringify(login)}`);
      return user;
    },

    /** Adds a user and their address (builtin only: a registry of its own has its users). */
    async addUser(user: { login: string; email: string; verified: boolean }): Promise<UserRow> {
      return writer().insertUser(deps.db, user);
    },

    /** As crates.io lists them: not revoked, newest first; expired ones only within `expiredDays`. */
    async list(owner: UserRow, expiredDays = 0): Promise<TokenRow[]> {
      return registry.listTokensOfUser(deps.db, owner.id, expiredDays);
    },

    get: requireToken,

    async create(owner: UserRow, request: TokenRequest): Promise<CreatedToken> {
      return issue({ userId: owner.id, ...validate(request) });
    },

    async revoke(id: string, owner?: UserRow): Promise<RevokedToken> {
      const { revokeToken } = writer();
      await requireToken(id, owner);
      const token = (await revokeToken(deps.db, id)) as TokenRow;
      return { token, ...(await cancelWorkflow(token)) };
    },

    async duplicate(id: string, owner?: UserRow): Promise<CreatedToken & { from: string }> {
      writer();
      const original = await requireToken(id, owner);
      return { from: original.id, ...(await issue(duplicateOf(original))) };
    },

    /** Duplicate, then revoke the original, in one transaction. */
    async rotate(id: string, owner?: UserRow): Promise<CreatedToken & { from: string; revoked: ExpiryWorkflowResult }> {
      const { revokeActiveToken, insertToken } = writer();
      const original = await requireToken(id, owner);
      if (original.revoked) throw new TokenError('conflict', `token ${id} is revoked: duplicate it instead`);
      const created = await issue(duplicateOf(original), (row) =>
        withTransaction(deps.db, async (client) => {
          if (!(await revokeActiveToken(client, id))) throw new TokenError('conflict', `token ${id} was revoked meanwhile`);
          return insertToken(client, row);
        }),
      );
      const { workflowCancelled: _, ...cancelled } = await cancelWorkflow({ ...original, revoked: true });
      return { from: original.id, ...created, revoked: cancelled };
    },

    /** A token the registry wrote itself and tells us of by id: its workflow started, or cancelled when revoked. */
    async syncWorkflow(id: string): Promise<{ token: TokenRow } & ExpiryWorkflowResult> {
      const token = await requireToken(id);
      if (token.revoked) {
        const { workflowCancelled: _, ...cancelled } = await cancelWorkflow(token);
        return { token, ...cancelled };
      }
      return { token, ...(await startWorkflow(token)) };
    },

    /** The registry revoked this token: end its reminders. Refused for a token the registry still has active. */
    async cancelRevokedWorkflow(id: string): Promise<RevokedToken> {
      const token = await requireToken(id);
      if (!token.revoked) throw new TokenError('conflict', `token ${id} is not revoked in the registry: revoke it there first`);
      return { token, ...(await cancelWorkflow(token)) };
    },

    async status(id: string, owner?: UserRow): Promise<TokenStatus> {
      const token = await requireToken(id, owner);
      const notifications = await listNotifications(deps.db, id);
      const webhookDeliveries = await listWebhookDeliveries(deps.db, id);
      const workflow = token.expiredAt ? await describeTokenExpiryWorkflow(await deps.temporal(), id, instanceOf(deps.config)) : null;
      return { token, workflow, notifications, webhookDeliveries };
    },
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
