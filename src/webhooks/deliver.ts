// One POST of a signed notification to a user's endpoint, and what its answer means: delivered, refused for good
// (a 4xx but 408 and 429, a redirect, an address the policy refuses), or worth retrying (5xx, 408, 429, no answer).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkedAddresses, parseWebhookUrl, pinnedLookup, WebhookAddressError, type Resolve, type WebhookPolicy } from './address';

export type PostOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'permanent'; status: number | null; reason: string }
  | { kind: 'retry'; status: number | null; reason: string };

export interface PostRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

export interface PostOptions {
  policy: WebhookPolicy;
  resolve: Resolve;
  timeoutMs: number;
  signal: AbortSignal;
}

/** Statuses a receiver answers when it is busy or timed out: retried like a 5xx. */
const RETRIED_4XX = [408, 429];

function classifyStatus(status: number): PostOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status >= 500 || RETRIED_4XX.includes(status)) return { kind: 'retry', status, reason: `the receiver answered ${status}` };
  if (status >= 300 && status < 400) return { kind: 'permanent', status, reason: `the receiver answered ${status}: redirects are not followed (set the final URL)` };
  return { kind: 'permanent', status, reason: `the receiver answered ${status}` };
}

/** Posts once, never throws: the URL is checked again and its host resolved and checked, then that address is called. */
export async function postWebhook(req: PostRequest, options: PostOptions): Promise<PostOutcome> {
  let url: URL;
  let addresses;
  try {
    url = parseWebhookUrl(req.url, options.policy);
    addresses = await checkedAddresses(url, options.policy, options.resolve);
  } catch (err) {
    if (err instanceof WebhookAddressError) return { kind: 'permanent', status: null, reason: `refused: ${err.message}` };
    // A name that does not resolve now may resolve later (DNS trouble): retried.
    return { kind: 'retry', status: null, reason: `could not resolve the host: ${messageOf(err)}` };
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]);
  return new Promise<PostOutcome>((resolve) => {
    const outgoing = send(
      url,
      {
        method: 'POST',
        headers: { ...req.headers, 'content-type': 'application/json', 'user-agent': 'token-expiry-webhooks/1' },
        lookup: pinnedLookup(addresses),
        // One connection per delivery: a pooled socket was checked for another request.
        agent: false,
        signal,
      },
      (response: IncomingMessage) => {
        // The status is the answer; its body is not read (a receiver streaming one forever holds nothing up).
        resolve(classifyStatus(response.statusCode ?? 0));
        response.destroy();
      },
    );
    outgoing.on('error', (err) => {
      const timedOut = signal.aborted && !options.signal.aborted;
      resolve({ kind: 'retry', status: null, reason: timedOut ? `no answer within ${options.timeoutMs / 1000} s` : `could not connect: ${messageOf(err)}` });
    });
    outgoing.end(req.body);
  });
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return 'code' in err && typeof err.code === 'string' ? `${err.code} ${err.message}` : err.message;
  return String(err);
}
