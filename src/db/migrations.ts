// Versioned schema, applied in order by migrate(). Never edit a released migration's SQL: add a new one.
import type { RegistrySchema } from '../registry/kinds';

export interface Migration {
  version: number;
  name: string;
  /**
   * registry: the builtin registry's tables, in public; service: this service's own schema
   * (TOKEN_EXPIRY_DB_SCHEMA), where unqualified names land. Each runs with its target first on the search path.
   */
  target: 'registry' | 'service';
  /** Applied only with this REGISTRY_SCHEMA (a registry of its own keeps its tables to itself). */
  only?: RegistrySchema;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    target: 'registry',
    only: 'builtin',
    name: 'users, emails and api_tokens, as crates.io has them',
    sql: `
      CREATE TABLE users (
        id bigserial PRIMARY KEY,
        login text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE emails (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
        email text NOT NULL,
        verified boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE api_tokens (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        token bytea NOT NULL UNIQUE,
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked boolean NOT NULL DEFAULT false,
        crate_scopes text[],
        endpoint_scopes text[],
        expired_at timestamptz,
        expiry_notification_at timestamptz
      );
      CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
    `,
  },
  {
    version: 2,
    target: 'registry',
    only: 'builtin',
    name: 'expiry workflow bookkeeping and the notification log',
    sql: `
      -- NULL while a token with an expiry has no workflow yet: the sweep starts those.
      ALTER TABLE api_tokens ADD COLUMN expiry_workflow_started_at timestamptz;
      CREATE INDEX api_tokens_expiry_workflow_missing ON api_tokens (id)
        WHERE expiry_workflow_started_at IS NULL AND expired_at IS NOT NULL AND NOT revoked;

      -- One row per (token, reminder): the audit trail, and the guard that makes each send happen once.
      CREATE TABLE expiry_notifications (
        id bigserial PRIMARY KEY,
        token_id bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
        reminder text NOT NULL,
        due_at timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('sending', 'sent', 'skipped', 'failed')),
        reason text,
        dedupe_key text NOT NULL,
        provider_message_id text,
        submitted_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        claimed_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (token_id, reminder)
      );
    `,
  },
  {
    version: 3,
    target: 'registry',
    only: 'builtin',
    name: 'suppressed: rendered but held back by EXPIRY_EMAILS=dry-run or the staging allowlist',
    sql: `
      ALTER TABLE expiry_notifications DROP CONSTRAINT expiry_notifications_status_check;
      ALTER TABLE expiry_notifications ADD CONSTRAINT expiry_notifications_status_check
        CHECK (status IN ('sending', 'sent', 'skipped', 'failed', 'suppressed'));
    `,
  },
  {
    version: 4,
    name: "the service's own schema: the notification log and workflow bookkeeping, no foreign keys into the registry",
    target: 'service',
    sql: `
      -- A builtin database from before: its log moves here with every row (its sequence and indexes move with it).
      DO $$
      BEGIN
        IF to_regclass('public.expiry_notifications') IS NOT NULL THEN
          ALTER TABLE public.expiry_notifications DROP CONSTRAINT IF EXISTS expiry_notifications_token_id_fkey;
          EXECUTE format('ALTER TABLE public.expiry_notifications SET SCHEMA %I', current_schema());
        END IF;
      END $$;

      -- One row per (token, reminder): the audit trail, and the guard that makes each send happen once.
      CREATE TABLE IF NOT EXISTS expiry_notifications (
        id bigserial PRIMARY KEY,
        token_id bigint NOT NULL,
        reminder text NOT NULL,
        due_at timestamptz NOT NULL,
        status text NOT NULL CONSTRAINT expiry_notifications_status_check
          CHECK (status IN ('sending', 'sent', 'skipped', 'failed', 'suppressed')),
        reason text,
        dedupe_key text NOT NULL,
        provider_message_id text,
        submitted_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        claimed_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (token_id, reminder)
      );

      -- A row once a token's workflow has been started; cancelled_at once a revoked token's has been cancelled.
      -- No row: the sweep starts it. Replaces api_tokens.expiry_workflow_started_at, so the registry's table
      -- gets no column, no index and no writes from us.
      CREATE TABLE expiry_workflows (
        token_id bigint PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        cancelled_at timestamptz
      );
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public'
                     AND table_name = 'api_tokens' AND column_name = 'expiry_workflow_started_at') THEN
          INSERT INTO expiry_workflows (token_id, started_at)
            SELECT id, expiry_workflow_started_at FROM public.api_tokens WHERE expiry_workflow_started_at IS NOT NULL;
          ALTER TABLE public.api_tokens DROP COLUMN expiry_workflow_started_at;
        END IF;
      END $$;
    `,
  },
  {
    version: 5,
    target: 'service',
    name: 'digests: which token\'s workflow sent a row and why it went when it did; each workflow\'s owner and expiry',
    sql: `
      -- dedupe_key is the email's key (one for every token of a digest); these say who sent it and when.
      ALTER TABLE expiry_notifications ADD COLUMN sent_by_token_id bigint;
      ALTER TABLE expiry_notifications ADD COLUMN timing text;
      CREATE INDEX expiry_notifications_dedupe_key ON expiry_notifications (dedupe_key) WHERE status = 'sending';

      -- A user's tokens falling due together, found by this index instead of the registry's tokens by user
      -- (crates.io's api_tokens has no index on user_id, and we may not add one).
      ALTER TABLE expiry_workflows ADD COLUMN user_id bigint, ADD COLUMN expires_at timestamptz;
      CREATE INDEX expiry_workflows_user_expiry ON expiry_workflows (user_id, expires_at);
      DO $$
      BEGIN
        IF to_regclass('api_tokens') IS NOT NULL THEN
          UPDATE expiry_workflows w SET user_id = t.user_id, expires_at = t.expired_at FROM api_tokens t WHERE t.id = w.token_id;
        END IF;
      END $$;
    `,
  },
  {
    version: 6,
    target: 'service',
    name: 'discovery: the highest token id a discovery pass has looked at',
    sql: `
      -- One row. NULL until the first pass; a pass holds the row (FOR UPDATE) so that one worker runs at a time.
      CREATE TABLE token_discovery (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        high_water bigint,
        passed_at timestamptz
      );
      INSERT INTO token_discovery DEFAULT VALUES;
    `,
  },
  {
    version: 7,
    target: 'service',
    name: "users' reminder preferences: lead times, expired notice, time zone and waking hours",
    sql: `
      -- One row per user who chose something; NULL in a column: the operator's setting. Keyed by the registry's
      -- user id, with no foreign key into its tables (attach mode: the registry's tables get no writes from us).
      CREATE TABLE user_preferences (
        user_id bigint PRIMARY KEY,
        reminders text[],
        expired_notice boolean,
        time_zone text,
        waking_start_minute smallint CHECK (waking_start_minute BETWEEN 0 AND 1439),
        waking_end_minute smallint CHECK (waking_end_minute BETWEEN 1 AND 1440),
        working_days text[],
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK (waking_start_minute < waking_end_minute),
        CHECK ((waking_start_minute IS NULL) = (waking_end_minute IS NULL)),
        CHECK (cardinality(working_days) > 0)
      );
    `,
  },
  {
    version: 8,
    target: 'service',
    name: "users' calendar feeds: the hash of each feed link's secret",
    sql: `
      -- One feed per user; a new link replaces the row (the old link stops working). Only the secret's SHA-256 is kept.
      CREATE TABLE calendar_feeds (
        user_id bigint PRIMARY KEY,
        secret_sha256 bytea NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 9,
    target: 'service',
    name: "the instance: this database's id in every workflow id and task queue, made once by migrate",
    sql: `
      -- One row, written by migrate() right after this (TOKEN_EXPIRY_INSTANCE, or a random id) and never changed.
      CREATE TABLE instance (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        id text NOT NULL CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$'),
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 10,
    target: 'service',
    name: 'fenced claims: the claim that holds a row, and since when its send\'s outcome is unknown',
    sql: `
      -- Set by each claim, on every row it takes; every later write for the row names it (src/db/claims.ts).
      ALTER TABLE expiry_notifications ADD COLUMN claim_id uuid;
      -- Set when a send ended without a definite answer: the row stays held until Postmark's search can be trusted.
      ALTER TABLE expiry_notifications ADD COLUMN outcome_unknown_at timestamptz;
    `,
  },
  {
    version: 11,
    target: 'service',
    name: "webhooks: each user's endpoint and signing secret, and one delivery row per token and reminder",
    sql: `
      -- One endpoint per user. The secret signs deliveries (HMAC), so it is kept as is, not hashed; a rotation
      -- replaces it. channels: where reminders go while the webhook is set (email and webhook, or webhook only).
      CREATE TABLE user_webhooks (
        user_id bigint PRIMARY KEY,
        url text NOT NULL,
        secret text NOT NULL CHECK (secret LIKE 'whsec\\_%'),
        channels text[] NOT NULL DEFAULT '{email,webhook}' CHECK (channels <@ '{email,webhook}' AND 'webhook' = ANY (channels)),
        created_at timestamptz NOT NULL DEFAULT now(),
        rotated_at timestamptz NOT NULL DEFAULT now()
      );

      -- The webhook channel's notification log, beside the email's (expiry_notifications): one row per token and
      -- reminder, claimed and fenced the same way (claim_id), with the webhook-id every attempt carries.
      CREATE TABLE webhook_deliveries (
        token_id bigint NOT NULL,
        reminder text NOT NULL,
        webhook_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'skipped')),
        reason text,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        response_status smallint,
        claim_id uuid,
        claimed_until timestamptz,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (token_id, reminder)
      );
    `,
  },
];
