/**
 * Sends email through Postmark's API with the official client, and turns its failures into
 * MailErrors that say whether a retry is safe (transient), pointless (permanent) or needs a
 * findSent check first (ambiguous).
 */
import { Models, ServerClient } from 'postmark';
import { redact } from '../redact';

export interface OutgoingEmail {
  from: string;
  to: string;
  subject: string;
  textBody: string;
  htmlBody: string;
  tag: string;
  dedupeKey: string;
  metadata?: Record<string, string>;
  /** Extra headers, e.g. List-Unsubscribe. */
  headers?: Record<string, string>;
}

export interface Delivery {
  messageId: string;
  submittedAt: Date;
}

/** What bounds one Postmark call besides the client's own timeout: the attempt's cancellation, its time left. */
interface CallLimits {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface Mailer {
  send(email: OutgoingEmail, limits?: CallLimits): Promise<Delivery>;
  /**
   * Postmark has no idempotency key: after an ambiguous failure, look for a message already
   * accepted with this dedupe key. Postmark's search may lag a fresh send by a few seconds, so
   * null right after a timeout is weaker evidence than null a minute later.
   */
  findSent(dedupeKey: string, limits?: CallLimits): Promise<Delivery | null>;
}

/** permanent: do not retry. transient: not accepted, retry. ambiguous: may have been accepted, findSent before retrying. */
export type MailErrorKind = 'permanent' | 'transient' | 'ambiguous';

export type MailErrorType =
  | 'PostmarkUnauthorized'
  | 'PostmarkInactiveRecipient'
  | 'PostmarkInvalidRequest'
  | 'PostmarkRateLimited'
  | 'PostmarkUnavailable'
  | 'PostmarkTimeout'
  | 'PostmarkNetworkError'
  | 'PostmarkUnexpected';

export class MailError extends Error {
  readonly kind: MailErrorKind;
  readonly type: MailErrorType;
  /** 0 when no HTTP answer arrived. */
  readonly httpStatus: number;
  /** Postmark's ErrorCode (300 invalid request, 406 inactive recipient, 10 bad token...); 0 if none. */
  readonly errorCode: number;

  constructor(message: string, details: { kind: MailErrorKind; type: MailErrorType; httpStatus: number; errorCode: number }) {
    super(message);
    this.name = 'MailError';
    this.kind = details.kind;
    this.type = details.type;
    this.httpStatus = details.httpStatus;
    this.errorCode = details.errorCode;
  }
}

const DEDUPE_METADATA_KEY = 'dedupe_key';
const CONNECTION_REFUSED = 'connection refused (ECONNREFUSED)';
const DEFAULT_TIMEOUT_SECONDS = 30;
const INACTIVE_RECIPIENT_ERROR_CODE = 406;
// Postmark's metadata search may not be an exact match; look at a few candidates and compare ourselves.
const FIND_SENT_CANDIDATES = 10;

interface PostmarkErrorShape {
  message: string;
  statusCode: number;
  code: number;
}

/** Every error the postmark client throws extends PostmarkError with numeric statusCode and code. */
function isPostmarkError(err: unknown): err is PostmarkErrorShape {
  if (!(err instanceof Error)) return false;
  const { statusCode, code } = err as Partial<PostmarkErrorShape>;
  return typeof statusCode === 'number' && typeof code === 'number';
}

/**
 * Turns whatever the postmark client threw into a MailError. `redact` lists strings (the
 * recipient) to remove from the message on top of anything shaped like an email address: Postmark quotes
 * recipients in its messages (406, invalid 'To'), and error messages end up in logs and workflow histories.
 */
export function classifyPostmarkError(err: unknown, opts: { redact?: readonly string[] } = {}): MailError {
  const redacted = (text: string) => redact(text, opts.redact ?? []);

  if (!isPostmarkError(err)) {
    // Not from the client's HTTP layer (a send or a search), so we cannot tell whether Postmark got the request.
    const text = err instanceof Error ? err.message : String(err);
    return new MailError(`Postmark call failed unexpectedly: ${redacted(text)}`, {
      kind: 'ambiguous',
      type: 'PostmarkUnexpected',
      httpStatus: 0,
      errorCode: 0,
    });
  }

  const { statusCode: httpStatus, code: errorCode } = err;
  if (httpStatus === 0 && err.message.includes(CONNECTION_REFUSED)) {
    // Nothing reached Postmark: safe to try again at once.
    return new MailError(`Postmark refused the connection: ${redacted(err.message)}`, {
      kind: 'transient',
      type: 'PostmarkNetworkError',
      httpStatus,
      errorCode,
    });
  }
  if (httpStatus === 0) {
    // No answer: the request may have reached Postmark before the connection died or we gave up.
    const timedOut = /timeout|timed out|aborted/i.test(err.message);
    return new MailError(
      `Postmark gave no answer (${timedOut ? 'timed out' : 'network error'}): ${redacted(err.message)}; the message may or may not have been accepted`,
      { kind: 'ambiguous', type: timedOut ? 'PostmarkTimeout' : 'PostmarkNetworkError', httpStatus, errorCode },
    );
  }

  const message = `Postmark ${httpStatus} (ErrorCode ${errorCode}): ${redacted(err.message)}`;
  const details = (kind: MailErrorKind, type: MailErrorType) => ({ kind, type, httpStatus, errorCode });
  if (httpStatus === 401) return new MailError(message, details('permanent', 'PostmarkUnauthorized'));
  if (httpStatus === 422 && errorCode === INACTIVE_RECIPIENT_ERROR_CODE) {
    return new MailError(message, details('permanent', 'PostmarkInactiveRecipient'));
  }
  if (httpStatus === 429) return new MailError(message, details('transient', 'PostmarkRateLimited'));
  if (httpStatus >= 400 && httpStatus < 500) return new MailError(message, details('permanent', 'PostmarkInvalidRequest'));
  // 5xx, and anything odd (a 3xx fetch did not follow): Postmark did not accept the message.
  return new MailError(message, details('transient', 'PostmarkUnavailable'));
}

/** Postmark answers with times like 2010-11-26T12:01:05.1794748-05:00. */
function parsePostmarkTime(value: unknown): Date | null {
  if (typeof value !== 'string') return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function parseApiUrl(apiUrl: string): URL {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    throw new Error(`Postmark apiUrl "${apiUrl}" is not a URL (use e.g. https://api.postmarkapp.com or http://127.0.0.1:3100)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`Postmark apiUrl "${apiUrl}" must start with https:// or http:// (use e.g. https://api.postmarkapp.com)`);
  }
  // The client only takes a host, so a path would be silently dropped.
  if (url.pathname !== '/' || url.search !== '') {
    throw new Error(`Postmark apiUrl "${apiUrl}" must not have a path or query (use e.g. https://api.postmarkapp.com)`);
  }
  return url;
}

export function createPostmarkMailer(opts: {
  serverToken: string;
  apiUrl: string;
  timeoutSeconds?: number;
  messageStream?: string;
}): Mailer {
  if (opts.serverToken.trim() === '') {
    throw new Error('Postmark serverToken is empty (use the Server API token from the server\'s API Tokens tab)');
  }
  const timeoutSeconds = opts.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (!(timeoutSeconds > 0)) {
    // The client reads 0 as "use 60s", which would surprise whoever set it.
    throw new Error(`Postmark timeoutSeconds ${timeoutSeconds} must be greater than 0 (use e.g. 30)`);
  }
  const url = parseApiUrl(opts.apiUrl);
  const messageStream = opts.messageStream ?? 'outbound';
  // The client takes a fetch of our own (postmark 5.x): it adds the caller's abort signal and time left to the
  // client's own timeout signal, so a cancelled or timed-out attempt stops waiting on Postmark.
  const clientFor = ({ signal, timeoutMs }: CallLimits = {}) =>
    new ServerClient(opts.serverToken, {
      useHttps: url.protocol === 'https:',
      requestHost: url.host,
      timeout: timeoutSeconds,
      fetch: (input, init) => {
        const signals = [init?.signal, signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(Math.max(0, timeoutMs))];
        return fetch(input, { ...init, signal: AbortSignal.any(signals.filter((s): s is AbortSignal => s != null)) }).catch(
          (err: unknown) => {
            // The client keeps only the message ("fetch failed"); a refused connection is the one network error
            // that proves Postmark got nothing, so say it in the message.
            if ((err as { cause?: { code?: unknown } }).cause?.code === 'ECONNREFUSED') throw new Error(CONNECTION_REFUSED);
            throw err;
          },
        );
      },
    });

  return {
    async send(email, limits) {
      let response;
      try {
        response = await clientFor(limits).sendEmail({
          From: email.from,
          To: email.to,
          Subject: email.subject,
          TextBody: email.textBody,
          HtmlBody: email.htmlBody,
          Tag: email.tag,
          MessageStream: messageStream,
          ...(email.headers ? { Headers: Object.entries(email.headers).map(([Name, Value]) => ({ Name, Value })) } : {}),
          // Dedupe key last so extra metadata cannot overwrite it.
          Metadata: { ...email.metadata, [DEDUPE_METADATA_KEY]: email.dedupeKey },
          // Account emails: no tracking pixel, and links stay as written instead of a click-tracking redirect.
          TrackOpens: false,
          TrackLinks: Models.LinkTrackingOptions.None,
        });
      } catch (err) {
        throw classifyPostmarkError(err, { redact: [email.to] });
      }
      if (typeof response?.MessageID !== 'string' || response.MessageID === '') {
        // A 2xx without an ID: it was probably accepted, so let the caller check with findSent.
        throw new MailError('Postmark answered the send without a MessageID', {
          kind: 'ambiguous',
          type: 'PostmarkUnexpected',
          httpStatus: 200,
          errorCode: typeof response?.ErrorCode === 'number' ? response.ErrorCode : 0,
        });
      }
      // The message is sent either way; an unreadable timestamp must not turn that into a failure.
      return { messageId: response.MessageID, submittedAt: parsePostmarkTime(response.SubmittedAt) ?? new Date() };
    },

    async findSent(dedupeKey, limits) {
      let result;
      try {
        result = await clientFor(limits).getOutboundMessages({
          count: FIND_SENT_CANDIDATES,
          offset: 0,
          messageStream,
          [`metadata_${DEDUPE_METADATA_KEY}`]: dedupeKey,
        });
      } catch (err) {
        const error = classifyPostmarkError(err);
        // A search sends nothing, so a lost answer is just a failed lookup worth retrying.
        if (error.kind !== 'ambiguous') throw error;
        const { type, httpStatus, errorCode } = error;
        throw new MailError(error.message, { kind: 'transient', type, httpStatus, errorCode });
      }
      // Trust the server's filter only when it does not show us the metadata to check.
      const match = (result.Messages ?? []).find((m) => m.Metadata === undefined || m.Metadata[DEDUPE_METADATA_KEY] === dedupeKey);
      if (!match) return null;
      return { messageId: match.MessageID, submittedAt: parsePostmarkTime(match.ReceivedAt) ?? new Date() };
    },
  };
}
