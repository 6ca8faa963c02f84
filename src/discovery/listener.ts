// The instant path: with the trigger from `registry-sql --trigger` installed, the registry's database NOTIFYs a
// token's id when the token is created or revoked. One connection LISTENs and hands the ids on in small batches.
// NOTIFY is not kept for a listener that is away: discovery and the sweep catch what it missed. Any role that can
// connect can NOTIFY on the channel, so the ids waiting are capped: past the cap they are dropped (counted, logged),
// and discovery and the sweep catch those too.
import { Client } from 'pg';
import type { TokenBatchLog } from '../tokenExpiry/batch';
import { TOKEN_CHANGE_CHANNEL } from '../registry/tokenChanges';
import { isBigintId } from '../registry/tokenId';

/** Ids arriving together (a registry's bulk insert) are handled together. */
const BATCH_MS = 50;
/** Ids waiting while a batch is handled; a flood past this is dropped, not queued. */
const MAX_PENDING_TOKEN_IDS = 5_000;
const RECONNECT_FIRST_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

export interface TokenChangeListener {
  close(): Promise<void>;
}

export interface ListenerOptions {
  connectionString: string;
  /** Handles a batch; a failure is logged, and the tokens are left to discovery and the sweep. */
  onTokens: (ids: string[]) => Promise<void>;
  /** After each connection and reconnection: notifications may have been missed while it was away. */
  onConnected: () => void;
  log: TokenBatchLog;
  /** Told how many ids were dropped at the cap (a metric); the drop is logged either way. */
  onDropped?: (count: number) => void;
  maxPending?: number;
}

export function listenForTokenChanges({
  connectionString,
  onTokens,
  onConnected,
  log,
  onDropped,
  maxPending = MAX_PENDING_TOKEN_IDS,
}: ListenerOptions): TokenChangeListener {
  let closed = false;
  let current: Client | null = null;
  let retryMs = RECONNECT_FIRST_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let batchTimer: NodeJS.Timeout | undefined;
  const pending = new Set<string>();
  let dropped = 0;
  /** One batch at a time: while it runs, ids wait in `pending` (capped), not in a growing chain of batches. */
  let handling: Promise<void> | null = null;

  const reportDropped = (): void => {
    if (dropped === 0) return;
    log.warn('token change notifications dropped at the cap: discovery and the sweep will find those tokens', { dropped, cap: maxPending });
    onDropped?.(dropped);
    dropped = 0;
  };

  const flush = (): void => {
    batchTimer = undefined;
    reportDropped();
    if (handling || pending.size === 0) return;
    const ids = [...pending];
    pending.clear();
    handling = onTokens(ids)
      .catch((err: unknown) => log.warn('token changes not handled: discovery or the sweep will', { tokens: ids.length, error: String(err) }))
      .finally(() => {
        handling = null;
        if (pending.size > 0 || dropped > 0) batchTimer ??= setTimeout(flush, closed ? 0 : BATCH_MS);
      });
  };

  const connect = async (): Promise<void> => {
    const client = new Client({ connectionString });
    let gone = false;
    const lost = (why: string): void => {
      if (gone) return;
      gone = true;
      if (current === client) current = null;
      client.end().catch(() => undefined);
      if (closed) return;
      log.warn('token change listener disconnected, reconnecting', { why, inMs: retryMs });
      retryTimer = setTimeout(() => void connect(), retryMs);
      retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
    };
    client.on('notification', ({ channel, payload }) => {
      // The payload is a token id; anything else on the channel is not ours to act on.
      if (channel !== TOKEN_CHANGE_CHANNEL || !payload || !isBigintId(payload)) return;
      if (pending.size >= maxPending && !pending.has(payload)) dropped++;
      else pending.add(payload);
      batchTimer ??= setTimeout(flush, BATCH_MS);
    });
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    try {
      await client.connect();
      await client.query(`LISTEN ${TOKEN_CHANGE_CHANNEL}`);
    } catch (err) {
      lost(err instanceof Error ? err.message : String(err));
      return;
    }
    if (closed) {
      await client.end().catch(() => undefined);
      return;
    }
    current = client;
    retryMs = RECONNECT_FIRST_MS;
    onConnected();
  };
  void connect();

  return {
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const client = current;
      current = null;
      await client?.end().catch(() => undefined);
      // Hand on what is waiting, batch by batch, before saying it is closed.
      while (handling || pending.size > 0 || dropped > 0) {
        clearTimeout(batchTimer);
        batchTimer = undefined;
        if (handling) await handling;
        else flush();
      }
    },
  };
}
