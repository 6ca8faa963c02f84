/**
 * A fake Postmark HTTP API (POST /email, GET /messages/outbound) on 127.0.0.1 that answers like the
 * real one, errors included, so the real `postmark` client can be tested against it. Also runnable
 * as a local mail sink for the dev stack: `node dist/scripts/devtools/fakePostmark.js --port 3100`,
 * whose messages a browser reads at its root (mailViewer.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAIL_VIEWER_CSP, mailViewerPage, type ViewerPage } from './mailViewer';

export interface SentMessage {
  MessageID: string;
  SubmittedAt: string;
  To: string;
  From: string;
  Subject: string;
  TextBody: string | undefined;
  HtmlBody: string | undefined;
  Tag: string | undefined;
  Metadata: Record<string, string>;
  MessageStream: string;
  Headers: { Name: string; Value: string }[];
  TrackOpens: boolean | undefined;
  TrackLinks: string | undefined;
  receivedAt: Date;
}

/** One request as the fake saw it. `status` is 0 while unanswered and stays 0 after a reset. */
export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  at: Date;
}

export type Failure =
  /** Answer with this HTTP status (500, 503, 429, 401, 422...) and a Postmark-style JSON error. */
  | { status: number; errorCode?: number; message?: string }
  /**
   * Record the message, then answer 200 only after `ms`: "Postmark accepted it but the client timed out".
   * Infinity holds the answer past every timeout (until the fake closes).
   */
  | { kind: 'acceptThenHang'; ms: number }
  /** Record the message, then cut the connection without answering: "accepted, and the answer was lost". */
  | { kind: 'acceptThenReset' }
  /** Destroy the socket without answering; the message is not recorded. */
  | { kind: 'reset' };

export interface FakePostmarkOptions {
  port?: number;
  /** The only token accepted (default 'test-server-token'). */
  serverToken?: string;
  /** Accept any non-empty token, as the dev-stack mail sink does. */
  acceptAnyToken?: boolean;
  /** Called for each accepted message (the script logs them). */
  onAccepted?: (message: SentMessage) => void;
}

export interface FakePostmark {
  url: string;
  port: number;
  serverToken: string;
  sent: SentMessage[];
  requests: RequestLogEntry[];
  /** Delay before every response, for benchmarks. */
  latencyMs: number;
  /**
   * Accepted messages stay out of GET /messages/outbound for this long (real search is not instant; Postmark
   * documents no bound).
   */
  searchLagMs: number;
  failNext(n: number, failure: Failure): void;
  /** Consulted for each POST /email when the failNext queue is empty; null = behave normally. */
  failWhile(rule: (() => Failure | null) | null): void;
  /** Clears sent, requests, queued failures and the failWhile rule (keeps latencyMs and searchLagMs). */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_SERVER_TOKEN = 'test-server-token';
const MAX_RECIPIENTS = 50;
// Postmark's documented metadata limits, as far as we know them; being strict here catches keys
// that production would reject.
const MAX_METADATA_FIELDS = 10;
const MAX_METADATA_KEY_LENGTH = 20;
const MAX_METADATA_VALUE_LENGTH = 80;

const MISSING_TOKEN_MESSAGE =
  'No Account or Server API tokens were supplied in the HTTP headers. Please add a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.';
const INVALID_TOKEN_MESSAGE = 'Request does not contain a valid Server token.';

class PostmarkRejection extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

const invalidRequest = (message: string) => new PostmarkRejection(422, 300, message);

export async function startFakePostmark(opts: FakePostmarkOptions = {}): Promise<FakePostmark> {
  const serverToken = opts.serverToken ?? DEFAULT_SERVER_TOKEN;
  const failureQueue: Failure[] = [];
  let failureRule: (() => Failure | null) | null = null;
  // Timers that would answer later; cleared on close so jest does not wait for them.
  const pendingTimers = new Set<NodeJS.Timeout>();

  const fake: FakePostmark = {
    url: '',
    port: 0,
    serverToken,
    sent: [],
    requests: [],
    latencyMs: 0,
    searchLagMs: 0,
    failNext(n, failure) {
      for (let i = 0; i < n; i++) failureQueue.push(failure);
    },
    failWhile(rule) {
      failureRule = rule;
    },
    reset() {
      fake.sent.length = 0;
      fake.requests.length = 0;
      failureQueue.length = 0;
      failureRule = null;
    },
    close: () => closeServer(),
  };

  const wait = (ms: number) =>
    ms <= 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            pendingTimers.delete(timer);
            resolve();
          }, ms);
          pendingTimers.add(timer);
        });

  async function answer(res: http.ServerResponse, log: RequestLogEntry, status: number, body: unknown, extraDelayMs = 0) {
    await wait(fake.latencyMs + extraDelayMs);
    log.status = status;
    // The client may have given up (timeout) while we waited.
    if (res.destroyed || !res.socket || res.socket.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  }

  const answerError = (res: http.ServerResponse, log: RequestLogEntry, status: number, errorCode: number, message: string) =>
    answer(res, log, status, { ErrorCode: errorCode, Message: message });

  async function showPage(res: http.ServerResponse, log: RequestLogEntry, { status, html }: ViewerPage) {
    log.status = status;
    res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': MAIL_VIEWER_CSP });
    res.end(html);
  }

  function checkToken(req: http.IncomingMessage): PostmarkRejection | null {
    const supplied = req.headers['x-postmark-server-token'];
    const token = Array.isArray(supplied) ? supplied[0] : supplied;
    if (!token || token.trim() === '') return new PostmarkRejection(401, 10, MISSING_TOKEN_MESSAGE);
    if (!opts.acceptAnyToken && token !== serverToken) return new PostmarkRejection(401, 10, INVALID_TOKEN_MESSAGE);
    return null;
  }

  function nextFailure(): Failure | null {
    return failureQueue.shift() ?? failureRule?.() ?? null;
  }

  async function handleSendEmail(req: http.IncomingMessage, res: http.ServerResponse, log: RequestLogEntry, rawBody: string) {
    const failure = nextFailure();
    if (failure && 'kind' in failure && failure.kind === 'reset') {
      log.status = 0;
      req.socket.destroy();
      return;
    }
    if (failure && 'status' in failure) {
      const errorCode = failure.errorCode ?? defaultErrorCode(failure.status);
      return answerError(res, log, failure.status, errorCode, failure.message ?? defaultFailureMessage(failure.status, errorCode, rawBody));
    }
    const hangMs = failure && 'kind' in failure && failure.kind === 'acceptThenHang' ? failure.ms : 0;
    const resetAfterAccept = failure !== null && 'kind' in failure && failure.kind === 'acceptThenReset';

    const rejection = checkToken(req);
    if (rejection) return answerError(res, log, rejection.status, rejection.errorCode, rejection.message);
    let message: SentMessage;
    try {
      message = validateEmail(parseJson(rawBody));
    } catch (err) {
      if (err instanceof PostmarkRejection) return answerError(res, log, err.status, err.errorCode, err.message);
      throw err;
    }
    fake.sent.push(message);
    opts.onAccepted?.(message);
    if (resetAfterAccept) {
      log.status = 0;
      req.socket.destroy();
      return;
    }
    if (hangMs === Infinity) return; // answered never; closing the fake cuts the connection
    return answer(
      res,
      log,
      200,
      { To: message.To, SubmittedAt: message.SubmittedAt, MessageID: message.MessageID, ErrorCode: 0, Message: 'OK' },
      hangMs,
    );
  }

  async function handleSearchOutbound(req: http.IncomingMessage, res: http.ServerResponse, log: RequestLogEntry, url: URL) {
    const rejection = checkToken(req);
    if (rejection) return answerError(res, log, rejection.status, rejection.errorCode, rejection.message);

    // Postmark reads query parameter names case-insensitively (the client sends `messageStream`).
    const params = new Map<string, string>();
    for (const [key, value] of url.searchParams) params.set(key.toLowerCase(), value);
    const count = Number(params.get('count'));
    const offset = Number(params.get('offset'));
    if (!params.has('count') || !Number.isInteger(count) || count < 1 || count > 500) {
      return answerError(res, log, 422, 300, "The 'count' parameter is required and must be between 1 and 500.");
    }
    if (!params.has('offset') || !Number.isInteger(offset) || offset < 0 || count + offset > 10_000) {
      return answerError(res, log, 422, 300, "The 'offset' parameter is required, and count + offset cannot exceed 10000.");
    }

    const visibleBefore = Date.now() - fake.searchLagMs;
    const matches = fake.sent
      .filter((m) => m.receivedAt.getTime() <= visibleBefore)
      .filter((m) => matchesSearch(m, params))
      .reverse(); // newest first
    return answer(res, log, 200, {
      TotalCount: matches.length,
      Messages: matches.slice(offset, offset + count).map(toOutboundSummary),
    });
  }

  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not a URL this server can read.\n');
      return;
    }
    const log: RequestLogEntry = { method: req.method ?? '', path: url.pathname, status: 0, at: new Date() };
    fake.requests.push(log);

    // Read the whole body first so that even a reset happens after the client has sent everything.
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const route = `${req.method} ${url.pathname.replace(/\/+$/, '').toLowerCase()}`;
      // Async, so that a throw anywhere below (any URL, any body) is a 500 for this request, not the process's end.
      const handled = (async () => {
        let viewer: ViewerPage | null = null;
        if (route === 'POST /email') await handleSendEmail(req, res, log, rawBody);
        else if (route === 'GET /messages/outbound') await handleSearchOutbound(req, res, log, url);
        else if (req.method === 'GET' && (viewer = mailViewerPage(url.pathname, fake.sent))) await showPage(res, log, viewer);
        else await answerError(res, log, 404, 0, `The fake Postmark API has no ${req.method} ${url.pathname}.`);
      })();
      handled.catch((err: unknown) => {
        // A bug in the fake must show up as a failing request, not as a hung test.
        if (!res.headersSent && !res.destroyed) {
          log.status = 500;
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ ErrorCode: 0, Message: `Fake Postmark crashed: ${String(err)}` }));
        }
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;

  function closeServer(): Promise<void> {
    for (const timer of pendingTimers) clearTimeout(timer);
    pendingTimers.clear();
    return new Promise((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  }

  return fake;
}

function parseJson(rawBody: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody);
  } catch {
    throw new PostmarkRejection(422, 402, 'Received invalid JSON input.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PostmarkRejection(422, 402, 'Received invalid JSON input.');
  }
  return parsed as Record<string, unknown>;
}

const CR_OR_LF = /[\r\n]/;
const ADDRESS = /^[^\s@<>()[\],;:"]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+$/;

/** Accepts `a@b.com` and `"Name" <a@b.com>`, like Postmark. */
function isValidAddress(value: string): boolean {
  const named = /^(?:"[^"]*"|[^<>"]*)\s*<([^<>]+)>$/.exec(value.trim());
  const address = named ? named[1]! : value.trim();
  return ADDRESS.test(address);
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidRequest(`'${field}' must be a string.`);
  return value;
}

function validateEmail(body: Record<string, unknown>): SentMessage {
  const from = optionalString(body, 'From') ?? '';
  const to = optionalString(body, 'To') ?? '';
  const subject = optionalString(body, 'Subject') ?? '';

  // Real Postmark refuses or strips these; rejecting keeps header injection visible in tests.
  for (const [field, value] of [['From', from], ['To', to], ['Subject', subject]] as const) {
    if (CR_OR_LF.test(value)) throw invalidRequest(`Header injection: '${field}' must not contain CR or LF.`);
  }
  if (!isValidAddress(from)) throw invalidRequest(`Invalid 'From' address: '${from}'.`);
  const recipients = to.split(',').map((r) => r.trim()).filter((r) => r !== '');
  if (recipients.length === 0) throw invalidRequest('Zero recipients specified');
  if (recipients.length > MAX_RECIPIENTS) throw invalidRequest(`Maximum of ${MAX_RECIPIENTS} recipients allowed per email message`);
  for (const recipient of recipients) {
    if (!isValidAddress(recipient)) throw invalidRequest(`Invalid 'To' address: '${recipient}'.`);
  }

  const textBody = optionalString(body, 'TextBody');
  const htmlBody = optionalString(body, 'HtmlBody');
  if (!textBody && !htmlBody) throw invalidRequest('Provide either email TextBody or HtmlBody or both.');

  const trackOpens = body.TrackOpens;
  if (trackOpens !== undefined && typeof trackOpens !== 'boolean') throw invalidRequest("'TrackOpens' must be a boolean.");

  return {
    MessageID: randomUUID(),
    SubmittedAt: postmarkTimestamp(new Date()),
    To: to,
    From: from,
    Subject: subject,
    TextBody: textBody,
    HtmlBody: htmlBody,
    Tag: optionalString(body, 'Tag'),
    Metadata: validateMetadata(body.Metadata),
    MessageStream: optionalString(body, 'MessageStream') ?? 'outbound',
    Headers: validateHeaders(body.Headers),
    TrackOpens: trackOpens,
    TrackLinks: optionalString(body, 'TrackLinks'),
    receivedAt: new Date(),
  };
}

function validateMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidRequest("'Metadata' must be an object of string values.");
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_METADATA_FIELDS) throw invalidRequest(`Metadata allows at most ${MAX_METADATA_FIELDS} fields.`);
  const seenKeys = new Set<string>();
  for (const [key, fieldValue] of entries) {
    if (typeof fieldValue !== 'string') throw invalidRequest(`Metadata value for '${key}' must be a string.`);
    if (key.length > MAX_METADATA_KEY_LENGTH) throw invalidRequest(`Metadata field name '${key}' is longer than ${MAX_METADATA_KEY_LENGTH} characters.`);
    if (fieldValue.length > MAX_METADATA_VALUE_LENGTH) throw invalidRequest(`Metadata value for '${key}' is longer than ${MAX_METADATA_VALUE_LENGTH} characters.`);
    // Postmark treats 'a_key' and 'A_Key' as the same field and refuses both.
    if (seenKeys.has(key.toLowerCase())) throw invalidRequest(`Metadata field '${key}' is duplicated.`);
    seenKeys.add(key.toLowerCase());
  }
  return { ...(value as Record<string, string>) };
}

function validateHeaders(value: unknown): { Name: string; Value: string }[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidRequest("'Headers' must be an array of { Name, Value }.");
  return value.map((header: unknown) => {
    const { Name, Value } = (header ?? {}) as { Name?: unknown; Value?: unknown };
    if (typeof Name !== 'string' || typeof Value !== 'string') throw invalidRequest("Each header needs a string 'Name' and 'Value'.");
    if (CR_OR_LF.test(Name) || CR_OR_LF.test(Value)) throw invalidRequest(`Header injection: header '${Name}' must not contain CR or LF.`);
    return { Name, Value };
  });
}

function matchesSearch(message: SentMessage, params: Map<string, string>): boolean {
  const recipients = message.To.split(',').map((r) => emailOf(r).toLowerCase());
  for (const [key, value] of params) {
    if (key === 'recipient' && !recipients.includes(value.toLowerCase())) return false;
    if (key === 'fromemail' && emailOf(message.From).toLowerCase() !== value.toLowerCase()) return false;
    if (key === 'tag' && message.Tag !== value) return false;
    if (key === 'subject' && message.Subject !== value) return false;
    if (key === 'messagestream' && message.MessageStream !== value) return false;
    if (key.startsWith('metadata_')) {
      const field = key.slice('metadata_'.length);
      const stored = Object.entries(message.Metadata).find(([k]) => k.toLowerCase() === field);
      if (stored?.[1] !== value) return false;
    }
  }
  return true;
}

function toOutboundSummary(message: SentMessage) {
  const recipients = message.To.split(',').map((r) => r.trim());
  return {
    MessageID: message.MessageID,
    Tag: message.Tag ?? '',
    To: recipients.map((r) => ({ Email: emailOf(r), Name: nameOf(r) })),
    Cc: [],
    Bcc: [],
    Recipients: recipients.map(emailOf),
    ReceivedAt: message.SubmittedAt,
    From: message.From,
    Subject: message.Subject,
    Attachments: [],
    Status: 'Sent',
    TrackOpens: message.TrackOpens ?? false,
    TrackLinks: message.TrackLinks ?? 'None',
    Metadata: message.Metadata,
    MessageStream: message.MessageStream,
    Sandboxed: false,
  };
}

function emailOf(address: string): string {
  return /<([^<>]+)>\s*$/.exec(address)?.[1] ?? address.trim();
}

function nameOf(address: string): string | null {
  const name = /^\s*"?([^"<]*?)"?\s*</.exec(address)?.[1];
  return name ? name : null;
}

/**
 * Postmark answers in US Eastern time with seven fractional digits, e.g.
 * 2010-11-26T12:01:05.1794748-05:00; a fixed -05:00 keeps clients honest about parsing offsets.
 */
function postmarkTimestamp(date: Date): string {
  const eastern = new Date(date.getTime() - 5 * 60 * 60 * 1000).toISOString(); // ...T07:01:05.179Z
  return `${eastern.slice(0, -1)}0000-05:00`;
}

function defaultErrorCode(status: number): number {
  return status === 422 ? 300 : status === 401 ? 10 : 0;
}

function defaultFailureMessage(status: number, errorCode: number, rawBody: string): string {
  if (status === 422 && errorCode === 406) {
    // Like Postmark, name the address: callers must keep it out of their own error messages.
    let to = 'unknown@example.com';
    try {
      const body = JSON.parse(rawBody) as { To?: unknown };
      if (typeof body.To === 'string' && body.To !== '') to = body.To;
    } catch {
      // keep the placeholder
    }
    return `You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ${to}. Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression.`;
  }
  if (status === 422) return 'Invalid email request.';
  if (status === 401) return INVALID_TOKEN_MESSAGE;
  if (status === 429) return 'Rate limit exceeded';
  if (status === 500) return 'Internal server error';
  if (status === 503) return 'Service unavailable';
  return `Request failed with status ${status}`;
}

function parseArgs(argv: string[]): { port: number; token: string | undefined } {
  const valueOf = (flag: string) => {
    const index = argv.indexOf(flag);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const portArg = valueOf('--port') ?? '3100';
  const port = Number(portArg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port: "${portArg}" is not a port number (use e.g. --port 3100)`);
  }
  return { port, token: valueOf('--token') };
}

if (require.main === module) {
  const { port, token } = parseArgs(process.argv.slice(2));
  startFakePostmark({
    port,
    serverToken: token,
    acceptAnyToken: token === undefined,
    onAccepted: (m) => console.log(JSON.stringify({ at: m.receivedAt.toISOString(), MessageID: m.MessageID, To: m.To, Subject: m.Subject })),
  })
    .then((fake) => {
      console.log(JSON.stringify({ fakePostmark: fake.url, mailViewer: `${fake.url}/` }));
      const shutdown = () => void fake.close().then(() => process.exit(0));
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    })
    .catch((err: unknown) => {
      console.error(`fake Postmark could not start: ${String(err)}`);
      process.exit(1);
    });
}
