/**
 * A pass-through in front of the fake Postmark that notes, for each request, which reminder it was for
 * (the dedupe key in the message's Metadata): the fake's own request log cannot tell two tokens' retries
 * apart. A rule can also hold a request back before the fake sees it (a send in flight but not yet
 * accepted) or answer in Postmark's place for one recipient (an inactive address).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface TapEntry {
  at: Date;
  method: string;
  path: string;
  /** The message's Metadata.dedupe_key (POST /email only). */
  dedupeKey: string | undefined;
  to: string | undefined;
  /** 0 while unanswered, and for good when the caller went away or the fake gave no answer. */
  status: number;
  answeredBy: 'fake' | 'tap' | 'nobody';
  /** The caller disconnected before an answer (e.g. its process was killed). */
  callerGone: boolean;
}

interface TapRequest {
  method: string;
  path: string;
  dedupeKey: string | undefined;
  to: string | undefined;
}

type TapAction =
  /** Answer in Postmark's place; the fake never sees the request. */
  | { answer: { status: number; body: unknown } }
  /** Wait this long before passing the request on; a request whose caller left meanwhile is dropped. */
  | { holdMs: number };

export interface PostmarkTap {
  url: string;
  log: TapEntry[];
  /** Consulted for every request; null passes everything straight through. */
  rule: ((request: TapRequest) => TapAction | null) | null;
  close(): Promise<void>;
}

export async function startPostmarkTap(targetUrl: string): Promise<PostmarkTap> {
  const target = new URL(targetUrl);
  const timers = new Set<NodeJS.Timeout>();
  const tap: PostmarkTap = {
    url: '',
    log: [],
    rule: null,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };

  const hold = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, entry: TapEntry) {
    const action = tap.rule?.({ method: entry.method, path: entry.path, dedupeKey: entry.dedupeKey, to: entry.to }) ?? null;
    if (action && 'answer' in action) {
      entry.status = action.answer.status;
      entry.answeredBy = 'tap';
      res.writeHead(action.answer.status, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(action.answer.body));
      return;
    }
    if (action && 'holdMs' in action) {
      await hold(action.holdMs);
      if (entry.callerGone) return;
    }
    const upstream = http.request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host },
    });
    upstream.on('response', (answer) => {
      entry.status = answer.statusCode ?? 0;
      entry.answeredBy = 'fake';
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    // The fake reset the connection (or is gone): the caller sees a reset too, as it would from Postmark.
    upstream.on('error', () => {
      entry.answeredBy = 'nobody';
      req.socket.destroy();
    });
    // The caller died while the fake was still deciding: stop waiting for the answer.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.end(body);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const entry: TapEntry = {
        at: new Date(),
        method: req.method ?? '',
        path: url.pathname,
        dedupeKey: undefined,
        to: undefined,
        status: 0,
        answeredBy: 'nobody',
        callerGone: false,
      };
      if (entry.method === 'POST') {
        try {
          const message = JSON.parse(body.toString('utf8')) as { To?: unknown; Metadata?: Record<string, unknown> };
          entry.to = typeof message.To === 'string' ? message.To : undefined;
          const key = message.Metadata?.dedupe_key;
          entry.dedupeKey = typeof key === 'string' ? key : undefined;
        } catch {
          // not JSON: the fake will say so
        }
      }
      tap.log.push(entry);
      res.on('close', () => {
        if (!res.writableFinished) entry.callerGone = true;
      });
      handle(req, res, body, entry).catch(() => req.socket.destroy());
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  tap.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return tap;
}

/** What Postmark answers for an address on its suppression list: 422, ErrorCode 406, naming the address. */
export function inactiveRecipientAnswer(to: string): { answer: { status: number; body: unknown } } {
  return {
    answer: {
      status: 422,
      body: {
        ErrorCode: 406,
        Message:
          `You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ${to}. ` +
          'Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression.',
      },
    },
  };
}
