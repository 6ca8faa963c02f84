// HTTP plumbing for the API: error replies in crates.io's shape, bounded JSON bodies, writing replies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { z } from 'zod';

const MAX_BODY_BYTES = 64 * 1024;
const MAX_REPORTED_ISSUES = 20;

export interface Reply {
  status: number;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is instead (e.g. a calendar feed). */
  raw?: { contentType: string; text: string };
  headers?: Record<string, string>;
  /** Extra fields for the request's log line: ids, and for /health what failed (never a secret). */
  log?: Record<string, string | number | boolean | undefined>;
}

/** A request the API turns down; the reply is `{"errors":[{"detail": ...}, ...]}`. */
export class ApiError extends Error {
  readonly details: string[];
  constructor(
    readonly status: number,
    detail: string | string[],
    readonly headers: Record<string, string> = {},
  ) {
    const details = Array.isArray(detail) ? detail : [detail];
    super(details.join('; '));
    this.details = details;
  }
}

export function errorBody(details: string[]): { errors: { detail: string }[] } {
  return { errors: details.map((detail) => ({ detail })) };
}

function fieldPath(path: readonly PropertyKey[], root: string): string {
  return path.reduce<string>(
    (at, key) => (typeof key === 'number' ? `${at}[${key}]` : at ? `${at}.${String(key)}` : String(key)),
    root,
  );
}

/** One line per problem, each naming the field: `api_token.crate_scopes[1]: must be a crate name ...`. */
export function describeIssues(error: z.ZodError, root = ''): string[] {
  return error.issues.slice(0, MAX_REPORTED_ISSUES).map((issue) => {
    const where = fieldPath(issue.path, root) || 'body';
    if (issue.code === 'unrecognized_keys') {
      const plural = issue.keys.length > 1 ? 's' : '';
      return `${where}: unknown field${plural} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
}

/** Zod says "expected string, received undefined" for a missing field; say it plainly. */
export const requiredFieldMessages = {
  error: (issue: { code?: string; input?: unknown }) =>
    issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : undefined,
};

// A refused body is never read to its end: sendReply closes the connection instead (see there).
function tooLarge(): ApiError {
  return new ApiError(400, `request body is larger than ${MAX_BODY_BYTES / 1024} KiB`);
}

/** The raw body, at most MAX_BODY_BYTES. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        stop();
        reject(tooLarge());
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** A form body (application/x-www-form-urlencoded, as RFC 8058's one-click POST sends), bounded; empty when none. */
export async function readFormBody(req: IncomingMessage): Promise<URLSearchParams> {
  if (!hasBody(req)) return new URLSearchParams();
  return new URLSearchParams((await readBody(req)).toString('utf8'));
}

/**
 * The request's JSON body, or undefined when there is none. Bad syntax, a wrong content type, bad UTF-8
 * and oversized bodies are 400s; what the JSON says is for the caller's zod schema to judge.
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (!hasBody(req)) return undefined;
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new ApiError(400, `Content-Type must be application/json (got ${JSON.stringify(mediaType || 'none')})`);
  }
  const raw = await readBody(req);
  if (raw.length === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new ApiError(400, 'request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError(400, `request body is not valid JSON (${(err as Error).message})`);
  }
}

/** How long a refused request's client has to read the reply before its connection is reset. */
const CLOSE_LINGER_MS = 1_000;

/**
 * Node ends a `Connection: close` reply with socket.destroySoon(); with the client's unread upload still in the
 * kernel's buffer that close is a reset, which can wipe the reply out before the client reads it (a client
 * uploading fast saw no 401 at all). Instead: read nothing more, send the reply and a FIN, reset a second later.
 */
function closeWithoutReading(socket: Socket): void {
  socket.destroySoon = () => {
    socket.pause();
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  };
}

/**
 * Writes the reply. A request whose body has not been read to its end (refused before or while reading it:
 * 401, 404, 405, a wrong content type, too large) gets `Connection: close`, and its socket is closed once the
 * reply is out (closeWithoutReading), instead of draining the rest of the body to keep the connection alive: a
 * client cannot make us read an upload we refused, nor hold the socket by trickling it.
 */
export function sendReply(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = {
    // Replies carry secrets and per-user data: no cache may keep them.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...reply.headers,
  };
  if (!req.complete) {
    headers.Connection = 'close';
    closeWithoutReading(req.socket);
  }
  if (reply.raw) {
    const payload = Buffer.from(reply.raw.text);
    res.writeHead(reply.status, { ...headers, 'Content-Type': reply.raw.contentType, 'Content-Length': String(payload.length) }).end(payload);
    return;
  }
  if (reply.body === undefined || reply.status === 204) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  const payload = Buffer.from(JSON.stringify(reply.body));
  res
    .writeHead(reply.status, {
      ...headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(payload.length),
    })
    .end(payload);
}
