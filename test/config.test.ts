import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';
import { temporalConnectionOptions } from '../src/temporal/connection';

test('defaults: a local dev server, 7- and 1-day reminders plus the expired notice', () => {
  const config = loadConfig({});
  expect(config).toMatchObject({
    TEMPORAL_ADDRESS: '127.0.0.1:7233',
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: 'token-expiry',
    EXPIRY_REMINDERS: [
      { key: '7d', beforeExpiryMs: 7 * 86_400_000 },
      { key: '1d', beforeExpiryMs: 86_400_000 },
    ],
    EXPIRED_NOTICE: true,
    EXPIRY_EMAILS: 'send',
  });
  expect(temporalConnectionOptions(config)).toEqual({ address: '127.0.0.1:7233' });
});

test('reminders are read in any order, deduplicated, largest first', () => {
  expect(loadConfig({ EXPIRY_REMINDERS: '1d, 30d,24h,90s' }).EXPIRY_REMINDERS.map((r) => r.key)).toEqual(['30d', '1d', '90s']);
});

test('every bad variable is named in one error, with what it expected', () => {
  let message = '';
  try {
    loadConfig({
      EXPIRY_REMINDERS: '7x',
      EXPIRED_NOTICE: 'maybe',
      EXPIRY_EMAILS: 'loud',
      API_AUTH_TOKEN: 'short',
      REGISTRY_URL: 'ftp://x',
      EXPIRY_SPREAD: 'soon',
      EXPIRY_DIGEST_WINDOW: '1 hour',
      TOKEN_DISCOVERY_INTERVAL: '-1m',
    });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    message = (err as Error).message;
  }
  expect(message.split('\n').sort()).toEqual([
    'API_AUTH_TOKEN: must be at least 16 characters',
    'EXPIRED_NOTICE: expected true or false',
    'EXPIRY_DIGEST_WINDOW: "1 hour" is not a duration (use e.g. 7d, 12h, 30m, 45s, or 0 for no digests)',
    'EXPIRY_EMAILS: expected send, dry-run or off',
    'EXPIRY_REMINDERS: "7x" is not a duration (use e.g. 7d, 12h, 30m, 45s)',
    'EXPIRY_SPREAD: "soon" is not a duration (use e.g. 7d, 12h, 30m, 45s, or 0)',
    'REGISTRY_URL: expected an http(s) URL',
    'TOKEN_DISCOVERY_INTERVAL: "-1m" is not a duration (use e.g. 7d, 12h, 30m, 45s, or 0 to turn discovery off)',
  ]);
  // And "0" turns each off.
  expect(loadConfig({ EXPIRY_SPREAD: '0', EXPIRY_DIGEST_WINDOW: '0', TOKEN_DISCOVERY_INTERVAL: '0' })).toMatchObject({
    EXPIRY_SPREAD: 0,
    EXPIRY_DIGEST_WINDOW: 0,
    TOKEN_DISCOVERY_INTERVAL: 0,
  });
});

describe('a remote cluster or Temporal Cloud', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'token-expiry-tls-'));
  const cert = path.join(dir, 'client.pem');
  const key = path.join(dir, 'client.key');
  writeFileSync(cert, 'CERT');
  writeFileSync(key, 'KEY');

  test('mTLS: the certificate pair is read from the files', () => {
    const options = temporalConnectionOptions(
      loadConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_TLS_CERT_PATH: cert, TEMPORAL_TLS_KEY_PATH: key }),
    );
    expect(options.tls).toEqual({ clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } });
  });

  test('an API key turns TLS on', () => {
    const options = temporalConnectionOptions(loadConfig({ TEMPORAL_API_KEY: 'secret-key' }));
    expect(options).toMatchObject({ apiKey: 'secret-key', tls: {} });
  });

  test('a certificate without its key is refused, naming both variables', () => {
    expect(() => temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_CERT_PATH: cert }))).toThrow(
      'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH: set both (mTLS) or neither',
    );
  });
});

test('the registry settings: a known REGISTRY_SCHEMA, a schema of its own, an instance fit for a workflow id', () => {
  expect(loadConfig({})).toMatchObject({ REGISTRY_SCHEMA: 'builtin', TOKEN_EXPIRY_DB_SCHEMA: 'token_expiry' });
  expect(loadConfig({}).TOKEN_EXPIRY_INSTANCE).toBeUndefined();
  expect(() => loadConfig({ REGISTRY_SCHEMA: 'gitlab', TOKEN_EXPIRY_DB_SCHEMA: 'public', TOKEN_EXPIRY_INSTANCE: 'Prod 1' })).toThrow(
    [
      'REGISTRY_SCHEMA: expected builtin or crates-io',
      'TOKEN_EXPIRY_DB_SCHEMA: must be a schema of its own, not public or pg_*',
      'TOKEN_EXPIRY_INSTANCE: expected 1-32 of a-z, 0-9 and -, e.g. staging',
    ].join('\n'),
  );
});
