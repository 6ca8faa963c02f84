// Versioned schema, applied in order by migrate(). Never edit a released migration: add a new one.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
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
    name: 'suppressed: rendered but held back by EXPIRY_EMAILS=dry-run or the staging allowlist',
    sql: `
      ALTER TABLE expiry_notifications DROP CONSTRAINT expiry_notifications_status_check;
      ALTER TABLE expiry_notifications ADD CONSTRAINT expiry_notifications_status_check
        CHECK (status IN ('sending', 'sent', 'skipped', 'failed', 'suppressed'));
    `,
  },
  {
    version: 4,
    name: 'digests: which token\'s workflow sent a row, and why it went when it did',
    sql: `
      -- dedupe_key is the email's key (one for every token of a digest); these say who sent it and when.
      ALTER TABLE expiry_notifications ADD COLUMN sent_by_token_id bigint;
      ALTER TABLE expiry_notifications ADD COLUMN timing text;
      CREATE INDEX expiry_notifications_dedupe_key ON expiry_notifications (dedupe_key) WHERE status = 'sending';
    `,
  },
];
