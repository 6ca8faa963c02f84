/**
 * The webhook channel end to end (real test server, PostgreSQL, Postmark client and fake Postmark): a receiver
 * verifying with the official Standard Webhooks library accepts every delivery; retries carry one webhook-id and
 * deliver once; a 4xx is recorded for good and the email still goes; inside addresses are refused when saved and
 * when delivering; a rotated secret replaces the old one.
 */
import { Webhook } from 'standardwebhooks';
import type { TokenExpiryStatus } from '../src/tokenExpiry/contract';
import type { Config } from '../src/config';
import type { CreatedToken } from '../src/tokens/service';
import { listWebhookDeliveries } from '../src/db/webhooks';
import type { Resolve } from '../src/webhooks/address';
import { WEBHOOK_MAX_ATTEMPTS } from '../activities/sendWebhook';
import { TestSystem, type TestUser } from './helpers/system';
import { Receiver, type Delivery } from './helpers/webhookReceiver';

const DAY = 86_400_000;
const SERVICE_TOKEN = 'registry-service-token-webhooks-1';
const system = TestSystem.use();

/** As the tests' receivers run: on 127.0.0.1 over http, which the operator allows here. */
const allowed = { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_ALLOW_HTTP: 'true' };

function settings(env: Record<string, string> = {}): Config {
  return system.config({ EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', ...allowed, ...env });
}

/** A token of `user` expiring in 5 days, run to the end of its workflow by one worker. */
async function runToken(config: Config, user: TestUser, opts: { resolve?: Resolve } = {}) {
  const created: CreatedToken = await system.createToken(system.tokens(config), user, 5 * DAY);
  const { result, status } = await system.withWorker(
    config,
    async () => {
      const result: TokenExpiryStatus = await system.env.client.workflow.getHandle(created.workflowId as string).result();
      // `tokens status` as the CLI prints it (it asks the workflow, so a worker must run).
      return { result, status: await system.tokens(config).status(created.token.id) };
    },
    { resolve: opts.resolve },
  );
  return { created, result, status, deliveries: await listWebhookDeliveries(system.db, created.token.id) };
}

function verify(secret: string, delivery: Delivery): unknown {
  return new Webhook(secret).verify(delivery.body, {
    'webhook-id': String(delivery.headers['webhook-id']),
    'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
    'webhook-signature': String(delivery.headers['webhook-signature']),
  });
}

test('a receiver verifying with the standardwebhooks library accepts every delivery: one per reminder, with the token and no address or secret', async () => {
  const receiver = await Receiver.start();
  const config = settings({ EXPIRED_NOTICE: 'true' });
  const user = await system.newUser();
  const { secret } = await system.webhooks(config).set(user, { url: receiver.url });
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

  const { created, result, deliveries } = await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(2);
  const payloads = receiver.deliveries.map((d) => verify(secret as string, d)) as any[];
  expect(payloads.map((p) => [p.type, p.data.reminder.key, p.data.reminder.kind])).toEqual([
    ['token.expiry.warning', '1d', 'warning'],
    ['token.expiry.expired', 'expired', 'expired'],
  ]);
  expect(payloads[0].data.token).toEqual({
    id: created.token.id,
    name: 'ci',
    crate_scopes: null,
    endpoint_scopes: null,
    expires_at: created.token.expiredAt?.toISOString(),
  });
  expect(payloads[0].data.regenerate_url).toBe(`https://crates.io/settings/tokens/new?from=${created.token.id}`);
  // One id per notification: two reminders, two ids.
  expect(new Set(receiver.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(2);
  for (const { body } of receiver.deliveries) {
    expect(body).not.toContain(user.email);
    expect(body).not.toContain(created.secret);
  }
  // Both channels: the emails went too, once each.
  expect(system.postmark.sent).toHaveLength(2);
  expect(result.reminders.map((r) => r.outcome)).toEqual(['sent', 'sent']);
  expect(deliveries.map((d) => [d.reminder, d.status, d.responseStatus])).toEqual([
    ['1d', 'sent', 204],
    ['expired', 'sent', 204],
  ]);
});

test('a receiver answering 500, 500, then 200 gets the notification once; every attempt carried one webhook-id; the email went once', async () => {
  const receiver = await Receiver.start([500, 500, 200]);
  const config = settings();
  const user = await system.newUser();
  const { secret } = await system.webhooks(config).set(user, { url: receiver.url });

  const { result, deliveries } = await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(3);
  expect(new Set(receiver.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
  for (const delivery of receiver.deliveries) expect(() => verify(secret as string, delivery)).not.toThrow();
  expect(deliveries).toEqual([
    expect.objectContaining({ reminder: '1d', status: 'sent', responseStatus: 200, attempts: 3, webhookId: receiver.deliveries[0]!.headers['webhook-id'] }),
  ]);
  // The retries were the webhook's: the email, sent on the first attempt, was not sent again.
  expect(system.postmark.sent).toHaveLength(1);
  expect(result.reminders[0]).toMatchObject({ outcome: 'sent' });
});

test(`a receiver that keeps answering 503 is given up on after ${WEBHOOK_MAX_ATTEMPTS} attempts, recorded as failed; the reminder, emailed, is sent`, async () => {
  const receiver = await Receiver.start([503]);
  const config = settings();
  const user = await system.newUser();
  await system.webhooks(config).set(user, { url: receiver.url });

  const { result, deliveries } = await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(WEBHOOK_MAX_ATTEMPTS);
  expect(new Set(receiver.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
  expect(deliveries).toEqual([
    expect.objectContaining({ status: 'failed', responseStatus: 503, reason: `gave up after ${WEBHOOK_MAX_ATTEMPTS} attempts: the receiver answered 503` }),
  ]);
  expect(system.postmark.sent).toHaveLength(1);
  expect(result.reminders[0]).toMatchObject({ outcome: 'sent' });
});

test.each([410, 400])('a receiver answering %i is a permanent failure, recorded and shown in tokens status; the email still goes', async (status) => {
  const receiver = await Receiver.start([status]);
  const config = settings();
  const user = await system.newUser();
  await system.webhooks(config).set(user, { url: receiver.url });

  const { result, status: shown } = await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(1);
  expect(system.postmark.sent).toHaveLength(1);
  expect(result.reminders[0]).toMatchObject({ outcome: 'sent' });
  expect(shown.notifications.map((n) => n.status)).toEqual(['sent']);
  expect(shown.webhookDeliveries).toEqual([
    expect.objectContaining({ reminder: '1d', status: 'failed', responseStatus: status, reason: `the receiver answered ${status}` }),
  ]);
});

test('an email refused for good does not stop the webhook: its 500 is retried, the email is not sent again', async () => {
  const receiver = await Receiver.start([500, 200]);
  const config = settings();
  const user = await system.newUser();
  await system.webhooks(config).set(user, { url: receiver.url });
  system.postmark.failNext(1, { status: 422, errorCode: 406, message: 'You tried to send to a recipient that has been marked as inactive.' });

  const { result, status } = await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(2);
  expect(status.webhookDeliveries.map((d) => [d.status, d.responseStatus, d.attempts])).toEqual([['sent', 200, 2]]);
  expect(system.postmark.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  expect(status.notifications.map((n) => n.status)).toEqual(['failed']);
  expect(result.reminders[0]).toMatchObject({ outcome: 'failed' });
});

test('a user who chose the webhook alone gets no email; the email row says why', async () => {
  const receiver = await Receiver.start();
  const config = settings();
  const user = await system.newUser();
  await system.webhooks(config).set(user, { url: receiver.url, channels: ['webhook'] });

  const { status: shown } = await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(1);
  expect(system.postmark.sent).toHaveLength(0);
  expect(shown.notifications.map((n) => [n.status, n.reason])).toEqual([['skipped', 'email-not-chosen']]);
});

describe('inside addresses', () => {
  const answering = (address: string): Resolve => async () => [{ address, family: 4 }];

  test('a URL whose host resolves to 127.0.0.1 is refused when saved (400, nothing stored) unless the operator allows it', async () => {
    const receiver = await Receiver.start();
    const refusing = settings({ WEBHOOK_ALLOW_PRIVATE: 'false', API_AUTH_TOKEN: SERVICE_TOKEN });
    const user = await system.newUser();
    const base = `${await system.api(refusing)}/api/v1/me/expiry/webhook`;
    const put = async (webhook: unknown) => {
      const res = await fetch(base, {
        method: 'PUT',
        headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'x-registry-user': user.login, 'content-type': 'application/json' },
        body: JSON.stringify({ webhook }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    const local = await put({ url: `http://localhost:${receiver.port}/hook` });
    expect(local.status).toBe(400);
    expect(local.body.errors[0].detail).toMatch(/^webhook\.url: localhost points inside \(.*127\.0\.0\.1.*\)/);
    expect((await put({ url: `http://127.0.0.1:${receiver.port}/hook` })).body.errors[0].detail).toMatch(/points inside \(127\.0\.0\.1\)/);
    expect((await put({ url: 'http://[::ffff:7f00:1]/hook' })).status).toBe(400);
    expect((await put({ url: 'http://169.254.169.254/latest/meta-data' })).status).toBe(400);
    expect((await put({ url: 'not a url' })).body.errors[0].detail).toMatch(/^webhook\.url: "not a url" is not a URL/);
    expect((await put({ url: 'https://hooks.example.com/x', channels: ['email'] })).body.errors[0].detail).toMatch(/^webhook\.channels: must include webhook/);
    expect(await system.webhooks(refusing).get(user)).toBeNull();

    // https only, unless allowed.
    const httpsOnly = system.webhooks(settings({ WEBHOOK_ALLOW_HTTP: 'false' }));
    await expect(httpsOnly.set(user, { url: receiver.url })).rejects.toThrow('url: must be an https URL, not http');

    const permitted = await system.webhooks(settings()).set(user, { url: `http://localhost:${receiver.port}/hook` });
    expect(permitted.url).toBe(`http://localhost:${receiver.port}/hook`);
  });

  test('checked again when the host resolves at delivery: a name that resolved outside when saved and to 127.0.0.1 now is refused for good', async () => {
    const receiver = await Receiver.start();
    const user = await system.newUser();
    const url = `http://hooks.example.test:${receiver.port}/hook`;
    // Saved while the name resolved to a public address...
    await system.webhooks(settings({ WEBHOOK_ALLOW_PRIVATE: 'false' }), answering('93.184.216.34')).set(user, { url });

    // ...and rebound to loopback before the delivery.
    const { status, deliveries } = await runToken(settings({ WEBHOOK_ALLOW_PRIVATE: 'false' }), user, { resolve: answering('127.0.0.1') });

    expect(receiver.deliveries).toHaveLength(0);
    expect(deliveries).toEqual([
      expect.objectContaining({ status: 'failed', responseStatus: null, reason: 'refused: hooks.example.test points inside (127.0.0.1): loopback, private and link-local addresses are refused' }),
    ]);
    expect(status.notifications.map((n) => n.status)).toEqual(['sent']);
  });

  test('allowed, the delivery connects to the address the check resolved (the name has no DNS record at all)', async () => {
    const receiver = await Receiver.start();
    const user = await system.newUser();
    await system.webhooks(settings(), answering('127.0.0.1')).set(user, { url: `http://hooks.example.test:${receiver.port}/hook` });

    const { deliveries } = await runToken(settings(), user, { resolve: answering('127.0.0.1') });

    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.deliveries[0]!.headers.host).toBe(`hooks.example.test:${receiver.port}`);
    expect(deliveries.map((d) => d.status)).toEqual(['sent']);
  });
});

test('rotating the secret through the API: the new secret verifies the next delivery, the old one no longer does; GET never shows it', async () => {
  const receiver = await Receiver.start();
  const config = settings({ API_AUTH_TOKEN: SERVICE_TOKEN });
  const user = await system.newUser();
  const base = `${await system.api(config)}/api/v1/me/expiry/webhook`;
  const call = async (method: string, path = '', body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${SERVICE_TOKEN}`,
        'x-registry-user': user.login,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  const made = await call('PUT', '', { webhook: { url: receiver.url } });
  expect(made.status).toBe(200);
  const oldSecret = made.body.webhook.secret as string;
  expect(oldSecret).toMatch(/^whsec_/);
  // A later change keeps the secret and does not show it again.
  expect((await call('PUT', '', { webhook: { url: `${receiver.url}?v=2` } })).body.webhook.secret).toBeUndefined();
  const rotated = await call('POST', '/secret');
  expect(rotated.status).toBe(200);
  const newSecret = rotated.body.webhook.secret as string;
  expect(newSecret).not.toBe(oldSecret);
  const shown = await call('GET');
  expect(shown.body.webhook).toEqual({ url: `${receiver.url}?v=2`, channels: ['email', 'webhook'], created_at: expect.any(String), rotated_at: expect.any(String) });

  await runToken(config, user);

  expect(receiver.deliveries).toHaveLength(1);
  expect(() => verify(newSecret, receiver.deliveries[0]!)).not.toThrow();
  expect(() => verify(oldSecret, receiver.deliveries[0]!)).toThrow();
});
