/**
 * A PostgreSQL pool for one send attempt that stalls it right after its claim (a busy pool, a long GC pause, a
 * stopped VM): the first registry read after the claim waits until the test releases it. Or one whose writes of a
 * sent email fail, as a database that went away after Postmark accepted.
 */
import type { Pool, PoolClient } from 'pg';

type Query = (...args: unknown[]) => Promise<unknown>;
const sqlOf = (args: unknown[]) => (typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string })?.text ?? ''));
const isClaim = (sql: string) => /INSERT INTO expiry_notifications/.test(sql) && /claimed_until/.test(sql) && /'sending'/.test(sql);
const readsRegistry = (sql: string) => /\bapi_tokens\b/.test(sql);

/** Forwards everything to `target`, with `query` replaced. */
function withQuery<T extends object>(target: T, query: Query): T {
  return new Proxy(target, {
    get(t, prop) {
      if (prop === 'query') return query;
      const value = Reflect.get(t, prop, t) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

export function stallAfterClaim(pool: Pool) {
  let armed = false;
  let stalled = false;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reached: () => void = () => undefined;
  const stall = new Promise<void>((resolve) => (reached = resolve));
  const watching = (query: Query): Query => async (...args) => {
    const result = await query(...args);
    if (isClaim(sqlOf(args))) armed = true;
    return result;
  };
  const poolQuery = watching((...args) => (pool.query as unknown as Query)(...args));
  const stalling = withQuery(pool, async (...args: unknown[]) => {
    if (armed && !stalled && readsRegistry(sqlOf(args))) {
      stalled = true;
      reached();
      await gate;
    }
    return poolQuery(...args);
  });
  const connect = async () => {
    const client = await pool.connect();
    return withQuery(client, watching((...args) => (client.query as unknown as Query)(...args)));
  };
  return { pool: new Proxy(stalling, { get: (t, p) => (p === 'connect' ? connect : Reflect.get(t, p)) }) as Pool, stall, release };
}

/** A pool whose writes of a sent email fail while `down()` says so; everything else goes through. */
export function failingSentWrites(pool: Pool, down: () => boolean): Pool {
  const failing = (query: Query): Query => async (...args) => {
    if (down() && /SET status = 'sent'/.test(sqlOf(args))) throw new Error('Connection terminated unexpectedly');
    return query(...args);
  };
  const connect = async (): Promise<PoolClient> => {
    const client = await pool.connect();
    return withQuery(client, failing((...args) => (client.query as unknown as Query)(...args)));
  };
  const wrapped = withQuery(pool, failing((...args) => (pool.query as unknown as Query)(...args)));
  return new Proxy(wrapped, { get: (t, p) => (p === 'connect' ? connect : Reflect.get(t, p)) }) as Pool;
}
