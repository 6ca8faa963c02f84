// Least privilege: the SQL a registry's DBA runs once (`token-expiry registry-sql --role NAME`), and the
// check at start-up that the role can read every column the adapter reads, naming the grant that is missing.
import type { Queryable } from '../db/transaction';
import { TOKEN_CHANGE_CHANNEL } from '../discovery/listener';
import type { RegistryAdapter } from './adapter';

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** A role or schema name we print into SQL: plain identifiers only, so the output reads as it runs. */
export const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The optional instant path: a NOTIFY of the token's id when a token is created, and when it is revoked. Not
 * on other updates (every request updates last_used_at). The function is the DBA's, not the service role's,
 * and sets its search_path, so that nothing the role owns runs inside the registry's writes.
 */
function changeTriggerSql(schema: string): string {
  const fn = `${ident(schema)}.notify_token_change()`;
  return `CREATE OR REPLACE FUNCTION ${fn} RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  PERFORM pg_notify(${literal(TOKEN_CHANGE_CHANNEL)}, NEW.id::text);
  RETURN NULL;
END $fn$;
DROP TRIGGER IF EXISTS token_expiry_created ON public.api_tokens;
CREATE TRIGGER token_expiry_created AFTER INSERT ON public.api_tokens
  FOR EACH ROW EXECUTE FUNCTION ${fn};
DROP TRIGGER IF EXISTS token_expiry_revoked ON public.api_tokens;
CREATE TRIGGER token_expiry_revoked AFTER UPDATE OF revoked ON public.api_tokens
  FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked) EXECUTE FUNCTION ${fn};
`;
}

/**
 * Idempotent SQL for `psql`: the role (if missing), SELECT on exactly the columns the adapter reads (any other
 * privilege on those tables revoked first), the service's own schema, owned by the role, and with `trigger`
 * the change trigger.
 */
export function registrySql({
  role,
  schema,
  registry,
  trigger = false,
}: {
  role: string;
  schema: string;
  registry: RegistryAdapter;
  trigger?: boolean;
}): string {
  const grants = registry.reads.map(
    ({ table, columns }) =>
      `REVOKE ALL ON public.${ident(table)} FROM ${ident(role)};\n` +
      `GRANT SELECT (${columns.map(ident).join(', ')}) ON public.${ident(table)} TO ${ident(role)};`,
  );
  return `-- token-expiry registry-sql (REGISTRY_SCHEMA=${registry.name}): run once as the database's owner,
-- e.g. psql "$REGISTRY_DATABASE_URL" -v ON_ERROR_STOP=1 -f this.sql. Safe to run twice.
-- The role reads only the columns below (never a token hash or an email confirmation token), writes nothing
-- of the registry's, and owns the schema ${schema}, where the service keeps its own tables.
-- Give it a password (ALTER ROLE ${ident(role)} PASSWORD '...') or another way to log in, then use it in DATABASE_URL.
SET client_min_messages TO warning;
BEGIN;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal(role)}) THEN
    CREATE ROLE ${ident(role)} LOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), ${literal(role)});
END $$;
GRANT USAGE ON SCHEMA public TO ${ident(role)};
${grants.join('\n')}
CREATE SCHEMA IF NOT EXISTS ${ident(schema)} AUTHORIZATION ${ident(role)};
ALTER SCHEMA ${ident(schema)} OWNER TO ${ident(role)};
${trigger ? changeTriggerSql(schema) : ''}COMMIT;
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
  if (missing.length > 0) {
    const { rows } = await db.query<{ role: string }>('SELECT current_user AS role');
    const role = rows[0]?.role ?? 'this role';
    throw new RegistryAccessError(
      `the role ${role} lacks ${missing.map((grant) => `${grant} TO ${role}`).join('; ')} ` +
        `(the output of \`token-expiry registry-sql --role ${role}\` grants what the service reads)`,
    );
  }
}
