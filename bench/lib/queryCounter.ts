// Preloaded into the bench's worker (`node --require .../queryCounter.js`): counts the SQL statements the
// worker sends to PostgreSQL (each one a round trip, BEGIN and COMMIT included), by statement, and writes
// the counts to queryCountFile(pid) every second, so the bench can read them before and after a run.
import { renameSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { queryCountFile } from './queryCounts';

/** The statement's first words, whitespace folded: enough to tell the claim's insert from the record's update. */
function statementLabel(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 70);
}

function install(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pg = require('pg') as typeof import('pg');
  const counts: Record<string, number> = {};
  const original = pg.Client.prototype.query;
  // Every query goes through Client#query, from a pool or a checked-out client alike.
  pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?');
    const label = statementLabel(text);
    counts[label] = (counts[label] ?? 0) + 1;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  const file = queryCountFile(process.pid);
  // Written aside and renamed, so that a reader never sees half a file; only when the counts changed (a rename
  // every 200 ms cost the worker about 1 % of its CPU in a profile).
  let written = '';
  const flush = () => {
    const json = JSON.stringify(counts);
    if (json === written) return;
    writeFileSync(`${file}.tmp`, json);
    renameSync(`${file}.tmp`, file);
    written = json;
  };
  setInterval(flush, 1_000).unref();
  process.on('exit', flush);
}

// Worker threads (the SDK runs workflows in some) inherit --require; the database is used from the main thread only.
if (isMainThread) install();
