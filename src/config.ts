import { z } from 'zod';
import { instanceTaskQueue, type ReminderSpec } from './tokenExpiry/contract';
import { DURATION_HINT, formatDuration, parseDuration } from './duration';
import { SQL_NAME } from './db/sqlName';
import { logger } from './log';
import { REGISTRY_SCHEMAS } from './registry/kinds';

const durationList = z.string().transform((text, ctx) => {
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
  const offsets: number[] = [];
  for (const part of parts) {
    const ms = parseDuration(part);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not a duration (${DURATION_HINT})` });
      return z.NEVER;
    }
    offsets.push(ms);
  }
  // Largest first, without repeats: "1d,7d,24h" -> 7d, 1d.
  return [...new Set(offsets)]
    .sort((a, b) => b - a)
    .map((beforeExpiryMs): ReminderSpec => ({ key: formatDuration(beforeExpiryMs), beforeExpiryMs }));
});

const booleanFlag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'expected true or false')
  .transform((v) => ['true', '1', 'yes'].includes(v));

const singleLine = (what: string) =>
  z.string().min(1).refine((v) => !/[\r\n]/.test(v), `${what} must be a single line`);

const positiveInt = z.coerce.number().int().positive();

/** A duration in ms, or 0 (written "0") for "off"; `zeroMeans` completes the error's "or 0" hint. */
const durationOrZero = (zeroMeans: string) =>
  z.string().transform((text, ctx) => {
    const ms = text.trim() === '0' ? 0 : parseDuration(text);
    if (ms === null) ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (${DURATION_HINT}, or 0${zeroMeans})` });
    return ms ?? z.NEVER;
  });

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const envSchema = z.object({
  DATABASE_URL: z.string().min(1).default('postgresql://postgres@127.0.0.1:5432/token_expiry'),
  // Whose tables the tokens live in (src/registry/): builtin (ours, writable) or crates-io (read-only).
  REGISTRY_SCHEMA: z.enum(REGISTRY_SCHEMAS, { error: `expected ${REGISTRY_SCHEMAS.join(' or ')}` }).default('builtin'),
  // The PostgreSQL schema that holds everything this service owns (notification log, bookkeeping, migrations).
  TOKEN_EXPIRY_DB_SCHEMA: z
    .string()
    .regex(SQL_NAME, 'expected a lower-case SQL identifier, e.g. token_expiry')
    .refine((name) => name !== 'public' && !name.startsWith('pg_'), 'must be a schema of its own, not public or pg_*')
    .default('token_expiry'),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('token-expiry'),
  // The instance id (src/db/instance.ts): part of every workflow id and of the task queue. The first `migrate` stores
  // it (this name, or a random one when unset); afterwards every program reads it from the database, and a value
  // set here must be the stored one. TEMPORAL_TASK_QUEUE is the queue's prefix: <queue>-<instance>.
  TOKEN_EXPIRY_INSTANCE: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/, 'expected 1-32 of a-z, 0-9 and -, e.g. staging')
    .optional(),
  POSTMARK_SERVER_TOKEN: z.string().min(1).optional(),
  POSTMARK_API_URL: httpUrl.default('https://api.postmarkapp.com'),
  // How long after Postmark accepted a message its search is trusted to show it (docs/design.md, Exactly once): a row
  // whose send ended ambiguously stays held this long. Postmark documents no bound; 2 minutes is a guess on the safe side.
  POSTMARK_SEARCH_LAG: z
    .string()
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === null || ms <= 0) ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (${DURATION_HINT})` });
      return ms ?? z.NEVER;
    })
    .prefault('2m'),
  EMAIL_FROM: singleLine('EMAIL_FROM').default('Example Registry <noreply@registry.example>'),
  REGISTRY_NAME: singleLine('REGISTRY_NAME').default('Example Registry'),
  REGISTRY_URL: httpUrl.default('http://localhost:3000').transform((u) => u.replace(/\/+$/, '')),
  // The registry's page where a user chooses their warnings (lead times, waking hours, channels), built on this
  // service's API; every email links to it. Unset: the registry's token settings page, REGISTRY_URL/settings/tokens.
  PREFERENCES_URL: httpUrl.optional(),
  // The API's address as calendar apps reach it: the base of each user's secret calendar feed link.
  API_PUBLIC_URL: httpUrl.default('http://localhost:3000').transform((u) => u.replace(/\/+$/, '')),
  // Signs the one-click unsubscribe links of warning emails (docs/design.md, Unsubscribe); unset: no List-Unsubscribe headers.
  UNSUBSCRIBE_SECRET: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)').optional(),
  // Webhooks (docs/webhooks.md): deliver to loopback, private, link-local and other inside addresses, and to
  // plain http. Off in production: a registry's users must not make the service call its own network.
  WEBHOOK_ALLOW_PRIVATE: booleanFlag.default(false),
  WEBHOOK_ALLOW_HTTP: booleanFlag.default(false),
  // How long one delivery attempt waits for the receiver's answer; a timeout is retried.
  WEBHOOK_TIMEOUT: z
    .string()
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === null || ms < 1000 || ms > 60_000) ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration between 1s and 60s (e.g. 10s)` });
      return ms ?? z.NEVER;
    })
    .prefault('10s'),
  TOKEN_PREFIX: z.string().regex(/^[a-z0-9_]{1,16}$/, 'expected 1-16 of a-z, 0-9, _').default('cio'),
  EXPIRY_REMINDERS: durationList.prefault('7d,1d'),
  EXPIRED_NOTICE: booleanFlag.default(true),
  // The lead times a user may choose from for their own plan (docs/design.md, Preferences); EXPIRY_REMINDERS is the default.
  EXPIRY_REMINDER_MENU: durationList
    .refine((menu) => menu.length > 0, 'must offer at least one lead time (e.g. 30d,14d,7d,3d,1d,12h)')
    .prefault('30d,14d,7d,3d,1d,12h'),
  // Moves each token's warnings earlier by a per-token amount up to this (never over 1 % of the lead time),
  // so that tokens sharing an expiry do not all fall due in the same second; 0 turns it off.
  EXPIRY_SPREAD: durationOrZero('').prefault('15m'),
  // Start a token's workflow with a delay until its first reminder, so that nothing runs while it sleeps.
  // false starts it at once, as before: kept for the benchmark's side-by-side comparison.
  EXPIRY_START_DELAY: booleanFlag.default(true),
  // One email covers a user's tokens whose same reminder falls due within this long (docs/design.md, Digests); 0: one per token.
  EXPIRY_DIGEST_WINDOW: durationOrZero(' for no digests').prefault('1h'),

  // send: deliver; dry-run: render and record as suppressed, no Postmark call; off: record as skipped.
  EXPIRY_EMAILS: z.enum(['send', 'dry-run', 'off'], { error: 'expected send, dry-run or off' }).default('send'),
  // Staging: only these addresses or @domains get real email; everyone else is recorded as suppressed.
  EXPIRY_EMAIL_ALLOWLIST: z
    .string()
    .transform((text) => text.split(',').map((entry) => entry.trim().toLowerCase()).filter(Boolean))
    .optional(),
  // Caps sends across all workers (Temporal enforces it per task queue).
  EMAIL_MAX_PER_SECOND: z.coerce.number().positive().optional(),
  // Worker tuning (docs/performance.md); the others default to the Temporal SDK's.
  // Workflows kept in memory between tasks. Ours sleep for days between reminders, so a cache mostly holds
  // memory; 0 would replay each local first try.
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(100),
  WORKER_MAX_CONCURRENT_ACTIVITIES: positiveInt.optional(),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(2).optional(),
  // This worker's own cap, evenly spaced (EMAIL_MAX_PER_SECOND's server-side limiter lets a second's worth through at once).
  WORKER_MAX_ACTIVITIES_PER_SECOND: z.coerce.number().positive().optional(),
  // Activity polls in flight at once (SDK default 10); each one waiting at the server can receive a task at the same instant.
  WORKER_MAX_CONCURRENT_ACTIVITY_POLLS: z.coerce.number().int().min(1).optional(),

  API_PORT: positiveInt.max(65_535).default(3000),
  // Loopback unless told: a container (docker-compose.yml) sets 0.0.0.0 and publishes the port itself.
  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_AUTH_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  SWEEP_INTERVAL: z
    .string()
    .refine((text) => parseDuration(text) !== null, `is not a duration (${DURATION_HINT})`)
    .default('1d'),
  // How often the worker looks for tokens created since its last look (docs/operations.md, Attach to your registry); 0 turns it off.
  TOKEN_DISCOVERY_INTERVAL: durationOrZero(' to turn discovery off').prefault('1m'),
  METRICS_PORT: positiveInt.max(65_535).optional(),
  // Applied to the logger by loadConfig.
  LOG_LEVEL: z
    .string()
    .transform((level) => level.toUpperCase())
    .pipe(z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'], { error: 'expected TRACE, DEBUG, INFO, WARN or ERROR' }))
    .default('INFO'),

  // A remote cluster or Temporal Cloud: mTLS (cert and key files) or an API key, both over TLS.
  TEMPORAL_TLS: booleanFlag.default(false),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
});

export type Config = z.infer<typeof envSchema>;

/** Every variable the system reads; docker-compose.yml is checked against this list. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as (keyof Config)[];

export class ConfigError extends Error {}

/** Parses the environment once; the error names each bad variable and what it expected. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as in most shells' `FOO= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (parsed.success) {
    logger.minimum = parsed.data.LOG_LEVEL;
    return parsed.data;
  }
  const lines = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'environment');
    const value = present[name];
    return issue.code === 'invalid_type' && value === undefined
      ? `${name}: is required`
      : `${name}: ${issue.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/** The instance id of a config that withInstance (src/db/instance.ts) has completed from the database. */
export function instanceOf(config: Pick<Config, 'TOKEN_EXPIRY_INSTANCE'>): string {
  if (!config.TOKEN_EXPIRY_INSTANCE) throw new Error('the instance id is read from the database at start-up (withInstance)');
  return config.TOKEN_EXPIRY_INSTANCE;
}

/** The task queue of this config's instance: TEMPORAL_TASK_QUEUE-<instance>. */
export function taskQueueOf(config: Pick<Config, 'TEMPORAL_TASK_QUEUE' | 'TOKEN_EXPIRY_INSTANCE'>): string {
  return instanceTaskQueue(config.TEMPORAL_TASK_QUEUE, instanceOf(config));
}

export function requirePostmarkToken(config: Config): string {
  if (!config.POSTMARK_SERVER_TOKEN) {
    throw new ConfigError('POSTMARK_SERVER_TOKEN: is required to send email (the Server API token from Postmark)');
  }
  return config.POSTMARK_SERVER_TOKEN;
}
