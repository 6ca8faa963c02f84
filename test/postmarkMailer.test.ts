/**
 * The production mailer through the real postmark client against the fake Postmark API:
 * what gets sent, and how every kind of failure is classified.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { classifyPostmarkError, createPostmarkMailer, MailError, type OutgoingEmail } from '../src/email/postmarkMailer';
import { startFakePostmark, type FakePostmark } from '../scripts/devtools/fakePostmark';

const RECIPIENT = 'maintainer@example.org';

let fake: FakePostmark;
let emailCounter = 0;

function anEmail(overrides: Partial<OutgoingEmail> = {}): OutgoingEmail {
  emailCounter += 1;
  return {
    from: 'Registry <noreply@registry.example.com>',
    to: RECIPIENT,
    subject: 'Your API token expires in 7 days',
    textBody: 'Rotate it at https://registry.example.com/tokens',
    htmlBody: '<p>Rotate it at <a href="https://registry.example.com/tokens">your tokens page</a></p>',
    tag: 'token-expiry-reminder',
    dedupeKey: `token-expiry-tok_${emailCounter}-7d`,
    ...overrides,
  };
}

function mailerFor(opts: { serverToken?: string; timeoutSeconds?: number } = {}) {
  return createPostmarkMailer({ serverToken: opts.serverToken ?? fake.serverToken, apiUrl: fake.url, timeoutSeconds: opts.timeoutSeconds });
}

async function sendError(promise: Promise<unknown>): Promise<MailError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof MailError) return err;
    throw new Error(`expected a MailError, got ${String(err)}`);
  }
  throw new Error('expected the send to fail, but it succeeded');
}

const emailAttempts = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/email');

beforeAll(async () => {
  fake = await startFakePostmark();
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

describe('send', () => {
  test('records the message with the dedupe key in Metadata and returns its MessageID and SubmittedAt', async () => {
    const before = Date.now();
    const email = anEmail({ metadata: { token_id: 'tok_42' } });

    const delivery = await mailerFor().send(email);

    expect(fake.sent).toHaveLength(1);
    const sent = fake.sent[0]!;
    expect(sent).toMatchObject({
      From: email.from,
      To: RECIPIENT,
      Subject: email.subject,
      TextBody: email.textBody,
      HtmlBody: email.htmlBody,
      Tag: 'token-expiry-reminder',
      MessageStream: 'outbound',
      TrackOpens: false,
      TrackLinks: 'None',
      Metadata: { dedupe_key: email.dedupeKey, token_id: 'tok_42' },
    });
    expect(delivery.messageId).toBe(sent.MessageID);
    // The fake answers in -05:00 with 7 fractional digits, like Postmark; a parser that drops the offset is 5h off.
    expect(delivery.submittedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(delivery.submittedAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
  });

  test('extra metadata cannot overwrite the dedupe key', async () => {
    const email = anEmail({ metadata: { dedupe_key: 'forged' } });
    await mailerFor().send(email);
    expect(fake.sent[0]!.Metadata.dedupe_key).toBe(email.dedupeKey);
  });

  test('sends on the configured message stream', async () => {
    const mailer = createPostmarkMailer({ serverToken: fake.serverToken, apiUrl: fake.url, messageStream: 'account-alerts' });
    const email = anEmail();
    await mailer.send(email);
    expect(fake.sent[0]!.MessageStream).toBe('account-alerts');
    expect(await mailer.findSent(email.dedupeKey)).not.toBeNull();
  });
});

describe('permanent failures', () => {
  test('a wrong server token is PostmarkUnauthorized and nothing is sent', async () => {
    const error = await sendError(mailerFor({ serverToken: 'not-the-token' }).send(anEmail()));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkUnauthorized', httpStatus: 401, errorCode: 10 });
    expect(fake.sent).toHaveLength(0);
  });

  test('an invalid request rejected by validation (422 / 300) is PostmarkInvalidRequest', async () => {
    const error = await sendError(mailerFor().send(anEmail({ from: 'not an address' })));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkInvalidRequest', httpStatus: 422, errorCode: 300 });
    expect(error.message).toMatch(/^Postmark 422 \(ErrorCode 300\): Invalid 'From' address/);
  });

  test('a queued 422 / 300 is PostmarkInvalidRequest', async () => {
    fake.failNext(1, { status: 422, errorCode: 300, message: 'Invalid email request.' });
    const error = await sendError(mailerFor().send(anEmail()));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkInvalidRequest', errorCode: 300 });
  });

  test('an inactive recipient (422 / 406) is PostmarkInactiveRecipient, and the message does not name the recipient', async () => {
    fake.failNext(1, { status: 422, errorCode: 406 });
    const error = await sendError(mailerFor().send(anEmail()));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkInactiveRecipient', httpStatus: 422, errorCode: 406 });
    expect(error.message).toMatch(/^Postmark 422 \(ErrorCode 406\): You tried to send to recipient\(s\) that have been marked as inactive/);
    expect(error.message).not.toContain(RECIPIENT);
    expect(error.stack ?? '').not.toContain(RECIPIENT);
  });

  test('an invalid recipient that does not look like an address is still kept out of the message', async () => {
    const error = await sendError(mailerFor().send(anEmail({ to: 'jane.doe' })));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkInvalidRequest' });
    expect(error.message).not.toContain('jane.doe');
  });

  test('the fake rejects a Subject with CRLF (header injection), and nothing is recorded', async () => {
    const error = await sendError(mailerFor().send(anEmail({ subject: 'Hello\r\nBcc: victim@example.com' })));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkInvalidRequest', errorCode: 300 });
    expect(fake.sent).toHaveLength(0);
  });

  test('a dedupe key longer than Postmark allows in metadata is rejected rather than silently cut', async () => {
    const error = await sendError(mailerFor().send(anEmail({ dedupeKey: 'k'.repeat(81) })));
    expect(error).toMatchObject({ kind: 'permanent', type: 'PostmarkInvalidRequest' });
  });
});

describe('transient failures', () => {
  test.each([
    [429, 'PostmarkRateLimited'],
    [500, 'PostmarkUnavailable'],
    [503, 'PostmarkUnavailable'],
  ])('%i is transient %s and nothing is recorded', async (status, type) => {
    fake.failNext(1, { status });
    const error = await sendError(mailerFor().send(anEmail()));
    expect(error).toMatchObject({ kind: 'transient', type, httpStatus: status });
    expect(fake.sent).toHaveLength(0);
  });

  test('failNext fails exactly n attempts, then Postmark accepts', async () => {
    fake.failNext(2, { status: 503 });
    const mailer = mailerFor();
    const email = anEmail();
    await expect(mailer.send(email)).rejects.toMatchObject({ kind: 'transient' });
    await expect(mailer.send(email)).rejects.toMatchObject({ kind: 'transient' });
    await expect(mailer.send(email)).resolves.toMatchObject({ messageId: expect.any(String) });
    expect(emailAttempts().map((r) => r.status)).toEqual([503, 503, 200]);
  });

  test('failWhile keeps failing until its rule says the outage is over', async () => {
    let outage = true;
    fake.failWhile(() => (outage ? { status: 503 } : null));
    const mailer = mailerFor();
    await expect(mailer.send(anEmail())).rejects.toMatchObject({ type: 'PostmarkUnavailable' });
    await expect(mailer.send(anEmail())).rejects.toMatchObject({ type: 'PostmarkUnavailable' });
    outage = false;
    await mailer.send(anEmail());
    expect(fake.sent).toHaveLength(1);
  });
});

describe('ambiguous failures', () => {
  test('a reset connection is ambiguous and the message was not recorded', async () => {
    fake.failNext(1, { kind: 'reset' });
    const email = anEmail();
    const error = await sendError(mailerFor().send(email));
    expect(error).toMatchObject({ kind: 'ambiguous', type: 'PostmarkNetworkError', httpStatus: 0, errorCode: 0 });
    expect(fake.sent).toHaveLength(0);
    expect(emailAttempts()).toEqual([expect.objectContaining({ status: 0 })]);
    expect(await mailerFor().findSent(email.dedupeKey)).toBeNull();
  });

  test('accepted but answered after the client timeout is ambiguous, and findSent then finds the message', async () => {
    fake.failNext(1, { kind: 'acceptThenHang', ms: 2500 });
    const mailer = mailerFor({ timeoutSeconds: 1 });
    const email = anEmail();

    const error = await sendError(mailer.send(email));
    // The client gave up on its own timeout: the fake had taken the message and not answered yet.
    expect(emailAttempts()).toEqual([expect.objectContaining({ status: 0 })]);
    expect(fake.sent).toHaveLength(1);
    expect(error).toMatchObject({ kind: 'ambiguous', type: 'PostmarkTimeout', httpStatus: 0 });

    const found = await mailer.findSent(email.dedupeKey);
    expect(found).not.toBeNull();
    expect(found!.messageId).toBe(fake.sent[0]!.MessageID);
    expect(Math.abs(found!.submittedAt.getTime() - fake.sent[0]!.receivedAt.getTime())).toBeLessThan(1000);
  });

  test('a refused connection is a definite refusal: nothing reached Postmark, retry at once', async () => {
    const closed = await startFakePostmark();
    await closed.close();
    const mailer = createPostmarkMailer({ serverToken: 'any', apiUrl: closed.url });
    await expect(mailer.send(anEmail())).rejects.toMatchObject({ kind: 'transient', type: 'PostmarkNetworkError' });
  });

  test('a connection cut after Postmark accepted is ambiguous', async () => {
    fake.failNext(1, { kind: 'acceptThenReset' });
    const mailer = createPostmarkMailer({ serverToken: fake.serverToken, apiUrl: fake.url });
    await expect(mailer.send(anEmail())).rejects.toMatchObject({ kind: 'ambiguous', type: 'PostmarkNetworkError' });
    expect(fake.sent).toHaveLength(1);
  });

  test('the caller\'s abort signal and time left end a send Postmark holds past every timeout, as ambiguous', async () => {
    fake.failNext(2, { kind: 'acceptThenHang', ms: Infinity });
    const mailer = createPostmarkMailer({ serverToken: fake.serverToken, apiUrl: fake.url, timeoutSeconds: 30 });
    const aborted = new AbortController();
    const cancelled = mailer.send(anEmail(), { signal: aborted.signal });
    setTimeout(() => aborted.abort(new Error('activity cancelled')), 100);
    await expect(cancelled).rejects.toMatchObject({ kind: 'ambiguous' });
    await expect(mailer.send(anEmail(), { timeoutMs: 200 })).rejects.toMatchObject({ kind: 'ambiguous', type: 'PostmarkTimeout' });
    expect(fake.sent).toHaveLength(2);
  });
});

describe('findSent', () => {
  test('finds a message sent before a hundred others: the search asks Postmark for the key, not for the latest page', async () => {
    const mailer = mailerFor();
    const wanted = anEmail();
    const delivery = await mailer.send(wanted);
    for (let batch = 0; batch < 11; batch += 1) {
      await Promise.all(Array.from({ length: 10 }, () => mailer.send(anEmail())));
    }

    expect(await mailer.findSent(wanted.dedupeKey)).toEqual(delivery);
  });

  test('returns null for a key never sent', async () => {
    await mailerFor().send(anEmail());
    expect(await mailerFor().findSent('token-expiry-never-sent-7d')).toBeNull();
  });

  test('finds the message with exactly this key among others, not a neighbour', async () => {
    const mailer = mailerFor();
    const wanted = anEmail({ dedupeKey: 'token-expiry-tok_7-1d' });
    const wantedDelivery = await mailer.send(wanted);
    await mailer.send(anEmail({ dedupeKey: 'token-expiry-tok_7-1d-again' }));
    await mailer.send(anEmail({ dedupeKey: 'token-expiry-tok_8-1d' }));

    expect(await mailer.findSent('token-expiry-tok_7-1d')).toEqual(wantedDelivery);
  });

  test('a lost search answer is transient (a search sends nothing)', async () => {
    const closed = await startFakePostmark();
    await closed.close();
    const mailer = createPostmarkMailer({ serverToken: 'any', apiUrl: closed.url });
    await expect(mailer.findSent('k')).rejects.toMatchObject({ kind: 'transient', type: 'PostmarkNetworkError' });
  });

  test('a wrong token on search is permanent', async () => {
    await expect(mailerFor({ serverToken: 'wrong' }).findSent('k')).rejects.toMatchObject({ kind: 'permanent', type: 'PostmarkUnauthorized' });
  });
});

/** An error as the postmark client throws it: an Error with Postmark's HTTP status and ErrorCode. */
function clientError(message: string, statusCode: number, code = 0): Error {
  return Object.assign(new Error(message), { statusCode, code });
}

describe('classifyPostmarkError', () => {
  test('an error that is not from the client is ambiguous: we cannot tell whether Postmark got the message', () => {
    const error = classifyPostmarkError(new TypeError('boom'));
    expect(error).toMatchObject({ kind: 'ambiguous', type: 'PostmarkUnexpected', httpStatus: 0, name: 'MailError' });
    expect(error.message).toBe('Postmark call failed unexpectedly: boom');
    expect(classifyPostmarkError('boom')).toMatchObject({ type: 'PostmarkUnexpected', message: 'Postmark call failed unexpectedly: boom' });
  });

  test('a status is trusted only from an Error that carries both a status and an ErrorCode', () => {
    expect(classifyPostmarkError({ message: 'x', statusCode: 422, code: 300 })).toMatchObject({ type: 'PostmarkUnexpected' });
    expect(classifyPostmarkError(Object.assign(new Error('x'), { statusCode: 422 }))).toMatchObject({ type: 'PostmarkUnexpected' });
    expect(classifyPostmarkError(Object.assign(new Error('x'), { code: 300 }))).toMatchObject({ type: 'PostmarkUnexpected' });
  });

  test.each([
    [401, 10, 'permanent', 'PostmarkUnauthorized'],
    [422, 406, 'permanent', 'PostmarkInactiveRecipient'],
    [400, 406, 'permanent', 'PostmarkInvalidRequest'],
    [400, 0, 'permanent', 'PostmarkInvalidRequest'],
    [499, 0, 'permanent', 'PostmarkInvalidRequest'],
    [429, 0, 'transient', 'PostmarkRateLimited'],
    [302, 0, 'transient', 'PostmarkUnavailable'],
    [500, 0, 'transient', 'PostmarkUnavailable'],
  ])('HTTP %i with ErrorCode %i is %s %s', (status, code, kind, type) => {
    const error = classifyPostmarkError(clientError('Nope.', status, code));
    expect(error).toMatchObject({ kind, type, httpStatus: status, errorCode: code });
    expect(error.message).toBe(`Postmark ${status} (ErrorCode ${code}): Nope.`);
  });

  test('no answer says whether the client timed out, and that the message may have been accepted', () => {
    expect(classifyPostmarkError(clientError('Request timed out', 0)).message).toBe(
      'Postmark gave no answer (timed out): Request timed out; the message may or may not have been accepted',
    );
    expect(classifyPostmarkError(clientError('socket hang up', 0)).message).toBe(
      'Postmark gave no answer (network error): socket hang up; the message may or may not have been accepted',
    );
  });

  test('addresses and the given recipient are replaced by [redacted]; a blank recipient redacts nothing', () => {
    const error = classifyPostmarkError(clientError(`Invalid 'To': "Jane" <jane@x.org>, bob@y.org; also jane.doe`, 422, 300), {
      redact: ['jane.doe'],
    });
    expect(error.message).toBe(`Postmark 422 (ErrorCode 300): Invalid 'To': "Jane" <[redacted]>, [redacted]; also [redacted]`);
    expect(classifyPostmarkError(clientError('Bad request.', 422, 300), { redact: ['', ' '] }).message).toBe(
      'Postmark 422 (ErrorCode 300): Bad request.',
    );
  });
});

describe('answers the fake does not give', () => {
  // A stand-in for Postmark answering the odd responses the real one may give: each test sets the body.
  let answer: { email?: unknown; search?: unknown } = {};
  let server: Server;
  let url = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      const body = req.url?.startsWith('/email') ? answer.email : answer.search;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  const mailer = () => createPostmarkMailer({ serverToken: 't', apiUrl: url });

  test('a 200 without a MessageID is ambiguous (it may have been accepted), keeping its ErrorCode', async () => {
    answer = { email: { ErrorCode: 0, Message: 'OK', MessageID: '' } };
    expect(await sendError(mailer().send(anEmail()))).toMatchObject({
      kind: 'ambiguous',
      type: 'PostmarkUnexpected',
      httpStatus: 200,
      errorCode: 0,
      message: 'Postmark answered the send without a MessageID',
    });
    answer = { email: { ErrorCode: 7, Message: 'odd' } };
    expect(await sendError(mailer().send(anEmail()))).toMatchObject({ type: 'PostmarkUnexpected', errorCode: 7 });
    answer = { email: { Message: 'odd', ErrorCode: 'x' } };
    expect(await sendError(mailer().send(anEmail()))).toMatchObject({ type: 'PostmarkUnexpected', errorCode: 0 });
  });

  test('a send answered with a missing or unreadable SubmittedAt still counts, at the time it was answered', async () => {
    for (const SubmittedAt of [null, 'not a time']) {
      answer = { email: { ErrorCode: 0, MessageID: 'm-1', SubmittedAt } };
      const before = Date.now();
      const delivery = await mailer().send(anEmail());
      expect(delivery.messageId).toBe('m-1');
      expect(delivery.submittedAt.getTime()).toBeGreaterThanOrEqual(before);
    }
  });

  test('a search result is checked against the key when it shows metadata, trusted when it does not', async () => {
    answer = { search: { TotalCount: 1, Messages: [{ MessageID: 'neighbour', ReceivedAt: '2026-11-30T10:00:00Z', Metadata: { dedupe_key: 'other' } }] } };
    expect(await mailer().findSent('mine')).toBeNull();
    answer = { search: { TotalCount: 1, Messages: [{ MessageID: 'mine', ReceivedAt: '2026-11-30T10:00:00Z', Metadata: { dedupe_key: 'mine' } }] } };
    expect(await mailer().findSent('mine')).toEqual({ messageId: 'mine', submittedAt: new Date('2026-11-30T10:00:00Z') });
    answer = { search: { TotalCount: 1, Messages: [{ MessageID: 'filtered', ReceivedAt: '2026-11-30T10:00:00Z' }] } };
    expect(await mailer().findSent('mine')).toMatchObject({ messageId: 'filtered' });
    answer = { search: { TotalCount: 0 } };
    expect(await mailer().findSent('mine')).toBeNull();
  });
});

describe('createPostmarkMailer', () => {
  test.each([
    ['api.postmarkapp.com', 'is not a URL (use e.g. https://api.postmarkapp.com or http://127.0.0.1:3100)'],
    ['ftp://api.postmarkapp.com', 'must start with https:// or http:// (use e.g. https://api.postmarkapp.com)'],
    ['https://api.postmarkapp.com/email', 'must not have a path or query (use e.g. https://api.postmarkapp.com)'],
    ['https://api.postmarkapp.com/?x=1', 'must not have a path or query (use e.g. https://api.postmarkapp.com)'],
  ])('rejects apiUrl %s with a hint', (apiUrl, problem) => {
    expect(() => createPostmarkMailer({ serverToken: 't', apiUrl })).toThrow(`Postmark apiUrl "${apiUrl}" ${problem}`);
  });

  test('takes https and http hosts', () => {
    expect(() => createPostmarkMailer({ serverToken: 't', apiUrl: 'https://api.postmarkapp.com' })).not.toThrow();
    expect(() => createPostmarkMailer({ serverToken: 't', apiUrl: 'http://127.0.0.1:3100' })).not.toThrow();
  });

  test.each([0, -1, Number.NaN])('rejects timeoutSeconds %d (the client would read 0 as 60 s)', (timeoutSeconds) => {
    expect(() => createPostmarkMailer({ serverToken: 't', apiUrl: fake.url, timeoutSeconds })).toThrow(
      `Postmark timeoutSeconds ${timeoutSeconds} must be greater than 0 (use e.g. 30)`,
    );
  });

  test('rejects an empty server token up front', () => {
    expect(() => createPostmarkMailer({ serverToken: ' ', apiUrl: fake.url })).toThrow(/serverToken is empty/);
  });
});

describe('fake Postmark answers like Postmark', () => {
  const post = (body: string, headers: Record<string, string> = { 'X-Postmark-Server-Token': fake.serverToken }) =>
    fetch(`${fake.url}/email`, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers }, body });

  test('missing token: 401 with ErrorCode 10', async () => {
    const res = await post(JSON.stringify({}), {});
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ ErrorCode: 10, Message: expect.stringMatching(/^No Account or Server API tokens were supplied/) });
  });

  test('invalid JSON: 422 with ErrorCode 402', async () => {
    const res = await post('{"From":');
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ ErrorCode: 402, Message: 'Received invalid JSON input.' });
  });

  test.each([
    [{ From: 'a@example.com', TextBody: 'x' }, 'Zero recipients specified'],
    [{ From: 'a@example.com', To: 'b@example.com' }, 'Provide either email TextBody or HtmlBody or both.'],
    [{ From: 'a@example.com', To: 'b@example.com', TextBody: 'x', Metadata: { n: 1 } }, "Metadata value for 'n' must be a string."],
    [{ From: 'a@example.com', To: 'b@example.com\r\nBcc: c@example.com', TextBody: 'x' }, expect.stringMatching(/CR or LF/)],
  ])('rejects %j with 422 / 300', async (body, message) => {
    const res = await post(JSON.stringify(body));
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ ErrorCode: 300, Message: message });
  });

  test('outbound search requires count and filters by metadata, newest first', async () => {
    const token = { 'X-Postmark-Server-Token': fake.serverToken, Accept: 'application/json' };
    expect((await fetch(`${fake.url}/messages/outbound?offset=0`, { headers: token })).status).toBe(422);

    const mailer = mailerFor();
    await mailer.send(anEmail({ metadata: { batch: 'b1' } }));
    const newest = await mailer.send(anEmail({ metadata: { batch: 'b1' } }));
    await mailer.send(anEmail({ metadata: { batch: 'b2' } }));

    const res = await fetch(`${fake.url}/messages/outbound?count=10&offset=0&metadata_batch=b1&recipient=${RECIPIENT}`, { headers: token });
    const body = (await res.json()) as { TotalCount: number; Messages: { MessageID: string; To: unknown }[] };
    expect(body.TotalCount).toBe(2);
    expect(body.Messages[0]).toMatchObject({ MessageID: newest.messageId, To: [{ Email: RECIPIENT, Name: null }], Status: 'Sent' });
  });

  test('unknown path: 404 JSON', async () => {
    const res = await fetch(`${fake.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ Message: expect.any(String) });
  });

  test('latencyMs delays every answer', async () => {
    fake.latencyMs = 300;
    try {
      const started = Date.now();
      await mailerFor().send(anEmail());
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      fake.latencyMs = 0;
    }
  });
});
