/**
 * The whole database as text: every row of every table in the public schema (found, not listed, so a
 * table added by a later migration is covered too), each row in PostgreSQL's own text form (bytea as hex,
 * timestamps to the microsecond), plus every sequence's position. Two equal snapshots mean nothing was
 * written, not even an id burned by a rolled-back insert.
 */
import type { Pool } from 'pg';

export interface DatabaseSnapshot {
  tables: Record<string, string[]>;
  sequences: Record<string, string>;
}

export async function snapshotDatabase(db: Pool): Promise<DatabaseSnapshot> {
  const { rows: tables } = await db.query<{ name: string }>(
    `SELECT quote_ident(table_name) AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
  );
  const snapshot: DatabaseSnapshot = { tables: {}, sequences: {} };
  for (const { name } of tables) {
    const { rows } = await db.query<{ row: string }>(`SELECT t::text AS row FROM ${name} t ORDER BY 1`);
    snapshot.tables[name] = rows.map((r) => r.row);
  }
  const { rows: sequences } = await db.query<{ name: string; position: string }>(
    `SELECT sequencename AS name, coalesce(last_value::text, 'unused') AS position FROM pg_sequences
      WHERE schemaname = 'public' ORDER BY sequencename`,
  );
  for (const { name, position } of sequences) snapshot.sequences[name] = position;
  return snapshot;
}

/** What changed between two snapshots, one line per added or removed row; empty when identical. */
export function describeChanges(before: DatabaseSnapshot, after: DatabaseSnapshot): string[] {
  const changes: string[] = [];
  for (const table of new Set([...Object.keys(before.tables), ...Object.keys(after.tables)])) {
    const was = new Set(before.tables[table] ?? []);
    const now = new Set(after.tables[table] ?? []);
    for (const row of now) if (!was.has(row)) changes.push(`${table}: + ${row}`);
    for (const row of was) if (!now.has(row)) changes.push(`${table}: - ${row}`);
  }
  for (const sequence of new Set([...Object.keys(before.sequences), ...Object.keys(after.sequences)])) {
    if (before.sequences[sequence] !== after.sequences[sequence]) {
      changes.push(`sequence ${sequence}: ${before.sequences[sequence]} -> ${after.sequences[sequence]}`);
    }
  }
  return changes;
}
