/**
 * Looks for personal data where it must never be: every workflow's history (payloads decoded from base64),
 * its ID, memo and search attributes, every schedule, and captured log lines. A needle is an address or a
 * secret the test made; finding one anywhere fails the test with where it was found.
 */
import type { Client } from '@temporalio/client';

export interface Needle {
  /** e.g. "address of user 3", "secret of token 12" (never the value itself: failure messages end up in CI logs). */
  label: string;
  value: string;
}

export interface ScanSource {
  label: string;
  text: string;
}

/** An address and its local part, and a secret and its random part without the prefix. */
export function needlesFor(what: { emails?: string[]; secrets?: string[] }): Needle[] {
  const needles: Needle[] = [];
  (what.emails ?? []).forEach((email, i) => {
    needles.push({ label: `address #${i + 1}`, value: email });
    const local = email.slice(0, email.indexOf('@'));
    if (local.length >= 8) needles.push({ label: `local part of address #${i + 1}`, value: local });
  });
  (what.secrets ?? []).forEach((secret, i) => {
    needles.push({ label: `secret #${i + 1}`, value: secret });
    needles.push({ label: `random part of secret #${i + 1}`, value: secret.slice(-32) });
  });
  return needles;
}

/** "needle in source" for every needle found; case-insensitive, since addresses are. */
export function findNeedles(sources: ScanSource[], needles: Needle[]): string[] {
  const found: string[] = [];
  for (const source of sources) {
    const text = source.text.toLowerCase();
    for (const needle of needles) {
      if (needle.value && text.includes(needle.value.toLowerCase())) found.push(`${needle.label} in ${source.label}`);
    }
  }
  return found;
}

/** The history as JSON, bytes as base64, the way `temporal workflow show --output json` exports it. */
function historyJson(history: unknown): string {
  return JSON.stringify(history, (_key, value: unknown) =>
    value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
  );
}

const BASE64 = /^[A-Za-z0-9+/]{8,}={0,2}$/;

/** Every string in a value, with bytes and base64 strings also decoded as UTF-8 (that is how payloads travel). */
export function textsOf(value: unknown, into: string[] = [], seen = new Set<object>()): string[] {
  if (typeof value === 'string') {
    into.push(value);
    if (BASE64.test(value) && value.length % 4 === 0) into.push(Buffer.from(value, 'base64').toString('utf8'));
  } else if (value instanceof Uint8Array) {
    into.push(Buffer.from(value).toString('utf8'));
  } else if (value instanceof Date) {
    into.push(value.toISOString());
  } else if (value && typeof value === 'object') {
    if (seen.has(value)) return into;
    seen.add(value);
    if (value instanceof Map) {
      for (const [k, v] of value) {
        textsOf(k, into, seen);
        textsOf(v, into, seen);
      }
    } else {
      for (const [k, v] of Object.entries(value)) {
        into.push(k);
        textsOf(v, into, seen);
      }
    }
  }
  return into;
}

export interface TemporalCorpus {
  sources: ScanSource[];
  workflows: number;
  schedules: number;
  events: number;
  /** Decoded payload texts, to check the decoding worked (they must show the token ids). */
  decodedPayloads: string[];
}

/** Every workflow run in the namespace (open and closed) and every schedule, as text. */
export async function temporalCorpus(client: Client): Promise<TemporalCorpus> {
  const corpus: TemporalCorpus = { sources: [], workflows: 0, schedules: 0, events: 0, decodedPayloads: [] };
  for await (const execution of client.workflow.list()) {
    corpus.workflows++;
    const label = `workflow ${execution.workflowId}`;
    corpus.sources.push({ label: `${label} (ID)`, text: execution.workflowId });
    corpus.sources.push({
      label: `${label} (listing: memo, search attributes)`,
      text: textsOf([execution.memo, execution.searchAttributes, execution.typedSearchAttributes, execution.raw]).join('\n'),
    });
    const handle = client.workflow.getHandle(execution.workflowId, execution.runId);
    const description = await handle.describe();
    corpus.sources.push({
      label: `${label} (describe)`,
      text: textsOf([description.memo, description.searchAttributes, description.typedSearchAttributes, description.raw]).join('\n'),
    });
    const history = await handle.fetchHistory();
    corpus.events += history.events?.length ?? 0;
    // The history as the CLI or UI would export it; payload data is base64 there, so decode each one too.
    const json = historyJson(history);
    const decoded = [...json.matchAll(/"data":\s*"([A-Za-z0-9+/=]*)"/g)].map(([, data]) =>
      Buffer.from(data ?? '', 'base64').toString('utf8'),
    );
    corpus.decodedPayloads.push(...decoded);
    corpus.sources.push({ label: `${label} (history)`, text: [json, ...decoded, ...textsOf(history)].join('\n') });
  }
  for await (const schedule of client.schedule.list()) {
    corpus.schedules++;
    const description = await client.schedule.getHandle(schedule.scheduleId).describe();
    corpus.sources.push({
      label: `schedule ${schedule.scheduleId}`,
      text: textsOf([schedule.scheduleId, schedule.memo, schedule.searchAttributes, description.action, description.memo, description.raw]).join('\n'),
    });
  }
  return corpus;
}
