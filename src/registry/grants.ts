// Least privilege: the SQL a registry's DBA runs once (`token-expiry registry-sql --role NAME`), and the
// check at start-up that the role can read every column the adapter reads (naming the grant that is missing) and
// no secret column, however granted.
import { quoteIdent } from '../db/sqlName';
import type { Queryable } from '../db/transaction';
import { TOKEN_CHANGE_CHANNEL } from './tokenChanges';
import type { RegistryAdapter } from './adapter';

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * The optional instant path: a NOTIFY of the token's id when a token is created, and when it is revoked. Not
 * on other updates (every request updates last_used_at). The function lives in `functionSchema`, a schema the
 * DBA owns (the registry's own by default), never in the service role's: a role can drop whatever is in a schema
 * it owns, and with the function both triggers. It sets its search_path, so nothing the role owns runs in the
 * registry's writes. A function left in the service's schema by an older `registry-sql` is dropped.
 */
function changeTriggerSql(role: string, schema: string, functionSchema: string): string {
  const fn = `${quoteIdent(functionSchema)}.token_expiry_notify_token_change()`;
  return `DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${literal(functionSchema)}
              AND pg_has_role(${literal(role)}, nspowner, 'USAGE')) THEN
    RAISE EXCEPTION 'the schema ${functionSchema} belongs to ${role}, which could drop the trigger function: use --trigger-schema with a schema the DBA owns';
  END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS ${quoteIdent(functionSchema)};
CREATE OR REPLACE FUNCTION ${fn} RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  PERFORM pg_notify(${literal(TOKEN_CHANGE_CHANNEL)}, NEW.id::text);
  RETURN NULL;
END $fn$;
REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC;
DROP TRIGGER IF EXISTS token_expiry_created ON public.api_tokens;
CREATE TRIGGER token_expiry_created AFTER INSERT ON public.api_tokens
  FOR EACH ROW EXECUTE FUNCTION ${fn};
DROP TRIGGER IF EXISTS token_expiry_revoked ON public.api_tokens;
CREATE TRIGGER token_expiry_revoked AFTER UPDATE OF revoked ON public.api_tokens
  FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked) EXECUTE FUNCTION ${fn};
DROP FUNCTION IF EXISTS ${quoteIdent(schema)}.notify_token_change();
`;
}

/**
 * Idempotent SQL for `psql`: the role (if missing), SELECT on exactly the columns the adapter reads (any other
 * privilege on those tables revoked first), the service's own schema, owned by the role, and with `trigger`
 * the change trigger (its function in `triggerSchema`).
 */
export function registrySql({
  role,
  schema,
  registry,
  trigger = false,
  triggerSchema = 'public',
}: {
  role: string;
  schema: string;
  registry: RegistryAdapter;
  trigger?: boolean;
  /** Where the trigger's function goes: a schema the DBA owns, not the role. */
  triggerSchema?: string;
}): string {
  const grants = registry.reads.map(
    ({ table, columns }) =>
      `REVOKE ALL ON public.${quoteIdent(table)} FROM ${quoteIdent(role)};\n` +
      `GRANT SELECT (${columns.map(quoteIdent).join(', ')}) ON public.${quoteIdent(table)} TO ${quoteIdent(role)};`,
  );
  return `-- token-expiry registry-sql (REGISTRY_SCHEMA=${registry.name}): run once as the database's owner,
-- e.g. psql "$REGISTRY_DATABASE_URL" -v ON_ERROR_STOP=1 -f this.sql. Safe to run twice.
-- The role reads only the columns below (never a token hash or an email confirmation token), writes nothing
-- of the registry's, and owns the schema ${schema}, where the service keeps its own tables.
-- Give it a password (ALTER ROLE ${quoteIdent(role)} PASSWORD '...') or another way to log in, then use it in DATABASE_URL.
SET client_min_messages TO warning;
BEGIN;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal(role)}) THEN
    CREATE ROLE ${quoteIdent(role)} LOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), ${literal(role)});
END $$;
GRANT USAGE ON SCHEMA public TO ${quoteIdent(role)};
${grants.join('\n')}
CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)} AUTHORIZATION ${quoteIdent(role)};
ALTER SCHEMA ${quoteIdent(schema)} OWNER TO ${quoteIdent(role)};
${trigger ? changeTriggerSql(role, schema, triggerSchema) : ''}COMMIT;
`;
}

export class RegistryAccessError extends Error {}

/** Refuses to run as a role that cannot read what the adapter reads; the message names each missing grant. */
export async function checkRegistryAccess(db: Queryable, registry: RegistryAdapter): Promise<void> {
  const missing: string[] = [];
  for (const { table, columns } of registry.reads) {
    const { rows } = await db.query<{ column: string; readable: boolean | null }>(
      `SELECT c AS column,
              CASE WHEN to_regclass($1) IS NOT NULL THEN has_column_privilege($1, c, 'SELECT') END AS readable
         FROM unnest($2::text[]) c`,
      [`public.${table}`, columns],
    ).catch((err: Error) => {
      throw new RegistryAccessError(`cannot check access to public.${table}: ${err.message}`);
    });
    if (rows.some((row) => row.readable === null)) {
      throw new RegistryAccessError(
        `there is no table public.${table}: is this the registry's database, and REGISTRY_SCHEMA=${registry.name} right?`,
      );
    }
    const unreadable = rows.filter((row) => !row.readable).map((row) => row.column);
    if (unreadable.length > 0) missing.push(`GRANT SELECT (${unreadable.join(', ')}) ON ${table}`);
  }
  const readableSecrets = await readableSecretColumns(db, registry);
  if (readableSecrets.length > 0) {
    const { rows } = await db.query<{ role: string }>('SELECT current_user AS role');
    const role = rows[0]?.role ?? 'this role';
    throw new RegistryAccessError(
      `the role ${role} can read ${readableSecrets.join(', ')}, which the service must never read: ` +
        `find the grant (to ${role}, to a role it is a member of, or to PUBLIC; or a table-level SELECT) and revoke it, ` +
        `or connect as a role that is not a superuser (\`token-expiry registry-sql --role NAME\` grants only what the service reads)`,
    );
  }
  if (missing.length > 0) {
    const { rows } = await db.query<{ role: string }>('SELECT current_user AS role');
    const role = rows[0]?.role ?? 'this role';
    throw new RegistryAccessError(
      `the role ${role} lacks ${missing.map((grant) => `${grant} TO ${role}`).join('; ')} ` +
        `(the output of \`token-expiry registry-sql --role ${role}\` grants what the service reads)`,
    );
  }
}

/**
 * The secret columns the current role can read, however that came about: a column or table grant to it, to a
 * role it inherits from, to PUBLIC, or being a superuser. has_column_privilege answers for all of those; asked for
 * every role the current one is a member of (pg_has_role MEMBER), it also finds a group joined without INHERIT,
 * whose privileges are one SET ROLE away.
 */
async function readableSecretColumns(db: Queryable, registry: RegistryAdapter): Promise<string[]> {
  const readable: string[] = [];
  for (const { table, columns } of registry.secrets) {
    const { rows } = await db.query<{ column: string }>(
      `SELECT c AS column FROM unnest($2::text[]) c
        WHERE to_regclass($1) IS NOT NULL
          AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = c AND NOT attisdropped)
          AND EXISTS (SELECT 1 FROM pg_roles r
                       WHERE pg_has_role(current_user, r.oid, 'MEMBER') AND has_column_privilege(r.oid, to_regclass($1), c, 'SELECT'))`,
      [`public.${table}`, columns],
    ).catch((err: Error) => {
      throw new RegistryAccessError(`cannot check access to public.${table}: ${err.message}`);
    });
    readable.push(...rows.map((row) => `${table}.${row.column}`));
  }
  return readable;
}
