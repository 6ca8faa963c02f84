// The token lifecycle a registry calls: create, revoke, duplicate ("Regenerate"), rotate, status.
import { createHash, randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { Config } from './config';
import { listNotifications, type NotificationRow } from './db/notifications';
import {
  findToken,
  findUserByLogin,
  insertToken,
  markExpiryWorkflowStarted,
  revokeTokenRow,
  type TokenRow,
} from './db/tokens';
import {
  cancelTokenExpiryWorkflow,
  describeTokenExpiryWorkflow,
  startTokenExpiryWorkflow,
  type WorkflowView,
} from './temporal';
import { checkExpiry, newTokenInput, type NewTokenInput } from './tokenInput';
import { tokenExpiryWorkflowId } from './contract';

export interface TokenServiceDeps {
  db: Pool;
  /** Connected on first use, so that commands that never touch Temporal don't need it. */
  temporal: () => Promise<Client>;
  config: Pick<Config, 'TOKEN_PREFIX' | 'TEMPORAL_TASK_QUEUE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>;
  now?: () => Date;
}

/** Bad input or an unknown id: the caller's mistake, reported without writing anything. */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly kind: 'invalid' | 'not-found' | 'conflict',
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

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** What a caller asks for, before validation. */
export interface TokenRequest {
  name: string;
  expiresAt: Date | null;
  crateScopes: string[] | null;
  endpointScopes: string[] | null;
}

function parseInput(input: TokenRequest): NewTokenInput {
  const parsed = newTokenInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TokenError(`${issue?.path.join('.') || 'token'}: ${issue?.message ?? 'is invalid'}`, 'invalid');
  }
  return parsed.data;
}

export function createTokenService(deps: TokenServiceDeps) {
  const now = deps.now ?? (() => new Date());

  async function startWorkflow(token: TokenRow): Promise<ExpiryWorkflowResult> {
    if (!token.expiredAt || token.revoked) return { workflowId: null };
    try {
      const workflowId = await startTokenExpiryWorkflow(await deps.temporal(), token, deps.config);
      token.expiryWorkflowStartedAt = await markExpiryWorkflowStarted(deps.db, token.id);
      return { workflowId };
    } catch (err) {
      return {
        workflowId: tokenExpiryWorkflowId(token.id),
        workflowError: `expiry reminders not scheduled yet (${(err as Error).message}); the sweep will start them`,
      };
    }
  }

  async function cancelWorkflow(token: TokenRow): Promise<ExpiryWorkflowResult & { workflowCancelled: boolean }> {
    if (!token.expiredAt) return { workflowId: null, workflowCancelled: false };
    const workflowId = tokenExpiryWorkflowId(token.id);
    try {
      return { workflowId, workflowCancelled: await cancelTokenExpiryWorkflow(await deps.temporal(), token.id) };
    } catch (err) {
      // The revoked flag is already committed: a reminder re-reads it and is skipped.
      return { workflowId, workflowCancelled: false, workflowError: `could not cancel: ${(err as Error).message}` };
    }
  }

  async function requireToken(id: string, ownerId?: string): Promise<TokenRow> {
    const token = await findToken(deps.db, id);
    if (!token || (ownerId !== undefined && token.userId !== ownerId)) {
      throw new TokenError(`no token with id ${JSON.stringify(id)}`, 'not-found');
    }
    return token;
  }

  /** The same name and scopes, and a fresh expiry of the same lifetime as `token`. */
  function duplicateOf(token: TokenRow): Omit<Parameters<typeof insertToken>[1], 'hash'> {
    const lifetimeMs = token.expiredAt ? token.expiredAt.getTime() - token.createdAt.getTime() : null;
    return {
      userId: token.userId,
      name: token.name,
      crateScopes: token.crateScopes,
      endpointScopes: token.endpointScopes,
      expiredAt: lifetimeMs === null ? null : new Date(now().getTime() + Math.max(lifetimeMs, 60_000)),
    };
  }

  return {
    async create(login: string, input: TokenRequest): Promise<CreatedToken> {
      const valid = parseInput(input);
      const expiryProblem = valid.expiresAt && checkExpiry(valid.expiresAt, now());
      if (expiryProblem) throw new TokenError(`expiresAt: ${expiryProblem}`, 'invalid');
      const user = await findUserByLogin(deps.db, login);
      if (!user) throw new TokenError(`no user with login ${JSON.stringify(login)}`, 'not-found');
      const { secret, hash } = newSecret(deps.config.TOKEN_PREFIX);
      const token = await insertToken(deps.db, {
        userId: user.id,
        hash,
        name: valid.name,
        expiredAt: valid.expiresAt,
        crateScopes: valid.crateScopes,
        endpointScopes: valid.endpointScopes,
      });
      return { token, secret, ...(await startWorkflow(token)) };
    },

    async revoke(id: string, ownerId?: string): Promise<{ token: TokenRow; workflowCancelled: boolean } & ExpiryWorkflowResult> {
      await requireToken(id, ownerId);
      const token = (await revokeTokenRow(deps.db, id)) as TokenRow;
      return { token, ...(await cancelWorkflow(token)) };
    },

    async duplicate(id: string, ownerId?: string): Promise<CreatedToken & { from: string }> {
      const original = await requireToken(id, ownerId);
      const { secret, hash } = newSecret(deps.config.TOKEN_PREFIX);
      const token = await insertToken(deps.db, { ...duplicateOf(original), hash });
      return { from: original.id, token, secret, ...(await startWorkflow(token)) };
    },

    /** Duplicate, then revoke the original, in one transaction. */
    async rotate(id: string, ownerId?: string): Promise<CreatedToken & { from: string; revoked: ExpiryWorkflowResult }> {
      const original = await requireToken(id, ownerId);
      if (original.revoked) throw new TokenError(`token ${id} is revoked: duplicate it instead`, 'conflict');
      const { secret, hash } = newSecret(deps.config.TOKEN_PREFIX);
      const client = await deps.db.connect();
      let token: TokenRow;
      let revokedOriginal: TokenRow;
      try {
        await client.query('BEGIN');
        const revoked = await client.query<{ id: string }>(
          'UPDATE api_tokens SET revoked = true WHERE id = $1 AND NOT revoked RETURNING id',
          [id],
        );
        if (revoked.rowCount !== 1) throw new TokenError(`token ${id} was revoked meanwhile`, 'conflict');
        token = await insertToken(client, { ...duplicateOf(original), hash });
        await client.query('COMMIT');
        revokedOriginal = { ...original, revoked: true };
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      } finally {
        client.release();
      }
      const started = await startWorkflow(token);
      const { workflowCancelled: _, ...cancelled } = await cancelWorkflow(revokedOriginal);
      return { from: original.id, token, secret, ...started, revoked: cancelled };
    },

    async status(
      id: string,
      ownerId?: string,
    ): Promise<{ token: TokenRow; workflow: WorkflowView | null; notifications: NotificationRow[] }> {
      const token = await requireToken(id, ownerId);
      const notifications = await listNotifications(deps.db, id);
      const workflow = token.expiredAt ? await describeTokenExpiryWorkflow(await deps.temporal(), id) : null;
      return { token, workflow, notifications };
    },
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
