// CPU time of the PostgreSQL backends serving some databases (the app's, Temporal's two), read from /proc:
// the server is shared with others, so its whole CPU would not be ours. A backend is a process whose title
// is "postgres: <user> <database> <client> <state>"; one that ends between two samples loses its last share,
// which the pools (long-lived connections) make small. PostgreSQL's own background work (WAL writer,
// checkpointer) is not counted.
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSecondsOf } from './proc';

function backendsOf(databases: string[]): { pid: number; database: string }[] {
  const pids: { pid: number; database: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let title: string;
    try {
      title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const words = title.replace(/\0/g, ' ').trim().split(/\s+/);
    // "postgres: [<cluster>:] <user> <database> <client> <state>" (Debian's titles name the cluster, 15/main:).
    const fields = words[1]?.endsWith(':') ? words.slice(2) : words.slice(1);
    if (words[0] === 'postgres:' && databases.includes(fields[1] ?? '')) pids.push({ pid: Number(entry), database: fields[1] as string });
  }
  return pids;
}

/** Samples every `everyMs` from now; stop() gives the CPU seconds the databases' backends used since. */
export function postgresCpuMeter(databases: string[], everyMs = 500) {
  const seen = new Map<number, { first: number; last: number; database: string }>();
  for (const { pid, database } of backendsOf(databases)) {
    const cpu = cpuSecondsOf(pid);
    seen.set(pid, { first: cpu, last: cpu, database });
  }
  const sample = () => {
    for (const { pid, database } of backendsOf(databases)) {
      const cpu = cpuSecondsOf(pid);
      if (Number.isNaN(cpu)) continue;
      const known = seen.get(pid);
      // A backend that started after the first reading did all its work inside the window.
      if (known) known.last = cpu;
      else seen.set(pid, { first: 0, last: cpu, database });
    }
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop(): { cpuSeconds: number; backends: number; byDatabase: Record<string, number> } {
      clearInterval(timer);
      sample();
      const byDatabase: Record<string, number> = {};
      for (const { first, last, database } of seen.values()) byDatabase[database] = (byDatabase[database] ?? 0) + last - first;
      const total = Object.values(byDatabase).reduce((a, b) => a + b, 0);
      const rounded = (x: number) => Math.round(x * 100) / 100;
      return {
        cpuSeconds: rounded(total),
        backends: seen.size,
        byDatabase: Object.fromEntries(Object.entries(byDatabase).map(([db, cpu]) => [db, rounded(cpu)])),
      };
    },
  };
}

/** Transactions committed and rolled back so far in each database. */
export async function commitsOf(db: { query: (sql: string, params: unknown[]) => Promise<{ rows: { datname: string; n: string }[] }> }, databases: string[]) {
  const { rows } = await db.query(
    'SELECT datname, xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = ANY($1::text[])',
    [databases],
  );
  return Object.fromEntries(rows.map((r) => [r.datname, Number(r.n)]));
}
