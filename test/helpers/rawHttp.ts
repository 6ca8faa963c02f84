/**
 * HTTP/1.1 over a bare socket, so that a test can send what fetch() refuses to: any method, header bytes
 * that are not Latin-1, a body without a content type, a Content-Length the body does not match, chunks.
 * One request per connection (Connection: close); the reply is read to the end.
 */
import net from 'node:net';

export interface RawRequest {
  method: string;
  /** Sent as is: percent-encode what should be encoded. */
  path: string;
  /** Header lines in order; values are written as UTF-8 bytes. */
  headers?: [string, string][];
  body?: Buffer | string;
  /** Send the body with Transfer-Encoding: chunked instead of a Content-Length. */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export async function rawRequest(baseUrl: string, request: RawRequest, timeoutMs = 30_000): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  const body = request.body === undefined ? undefined : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body, 'utf8');
  const lines = [`${request.method} ${request.path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close'];
  for (const [name, value] of request.headers ?? []) lines.push(`${name}: ${value}`);
  if (body !== undefined) lines.push(request.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  const payload = body === undefined ? head : Buffer.concat([head, request.chunked ? chunk(body) : body]);

  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: hostname, port: Number(port) });
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (data: Buffer) => chunks.push(data));
    // The server may answer and hang up before it has read an oversized body: the answer still counts.
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(payload);
  });
  return parseResponse(received);
}

function chunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += 16 * 1024) {
    const piece = body.subarray(at, at + 16 * 1024);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no HTTP answer (got ${raw.length} bytes: ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))})`);
  const [statusLine = '', ...headerLines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!Number.isInteger(status)) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let bodyBytes = raw.subarray(end + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') bodyBytes = unchunk(bodyBytes);
  else if (headers['content-length'] !== undefined) bodyBytes = bodyBytes.subarray(0, Number(headers['content-length']));
  const body = bodyBytes.toString('utf8');
  let json: unknown;
  try {
    json = body ? (JSON.parse(body) as unknown) : undefined;
  } catch {
    json = undefined;
  }
  return { status, headers, body, json };
}

function unchunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export interface UploadOutcome {
  /** The status the server answered with, if it answered. */
  status: number | undefined;
  /** Whether the server closed the connection before maxMs. */
  closedByServer: boolean;
  /** Milliseconds from the first byte sent until the server closed the connection (or maxMs). */
  ms: number;
}

/**
 * Sends a request head that declares a body of `declaredBytes`, then sends the body in `chunkBytes` pieces every
 * `intervalMs` (0: as fast as the socket takes them) until the server closes the connection or maxMs pass.
 */
export async function uploadUntilClosed(
  baseUrl: string,
  request: { method: string; path: string; headers?: [string, string][]; declaredBytes: number; chunkBytes: number; intervalMs: number },
  maxMs: number,
): Promise<UploadOutcome> {
  const { hostname, port } = new URL(baseUrl);
  const lines = [`${request.method} ${request.path} HTTP/1.1`, `Host: ${hostname}:${port}`, `Content-Length: ${request.declaredBytes}`];
  for (const [name, value] of request.headers ?? []) lines.push(`${name}: ${value}`);
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const received: Buffer[] = [];
    let sent = 0;
    let done = false;
    let pump: NodeJS.Timeout | undefined;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(pump);
      clearTimeout(deadline);
      socket.destroy();
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(received).toString('latin1'))?.[1]);
      resolve({ status: Number.isInteger(status) ? status : undefined, closedByServer, ms: performance.now() - started });
    };
    const deadline = setTimeout(() => finish(false), maxMs);
    const piece = Buffer.alloc(request.chunkBytes, 0x61);
    const next = () => {
      if (done || sent >= request.declaredBytes) return;
      sent += piece.length;
      const more = socket.write(piece);
      if (request.intervalMs > 0) pump = setTimeout(next, request.intervalMs);
      else if (more) setImmediate(next);
      else socket.once('drain', next);
    };
    socket.on('data', (data: Buffer) => received.push(data));
    socket.on('error', () => finish(true));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1', next);
  });
}
