import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, requirePostmarkToken } from '../src/config';
import { temporalConnectionOptions } from '../src/temporal/connection';

test('defaults: docs/operations.md\'s table, a local dev server, 7- and 1-day reminders plus the expired notice', () => {
  const config = loadConfig({});
  expect(config).toEqual({
    POSTMARK_SEARCH_LAG: 120_000,
    DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/token_expiry',
    TEMPORAL_ADDRESS: '127.0.0.1:7233',
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: 'token-expiry',
    TEMPORAL_TLS: false,
    POSTMARK_API_URL: 'https://api.postmarkapp.com',
    EMAIL_FROM: 'Example Registry <noreply@registry.example>',
    REGISTRY_NAME: 'Example Registry',
    REGISTRY_URL: 'http://localhost:3000',
    API_PUBLIC_URL: 'http://localhost:3000',
    WEBHOOK_ALLOW_PRIVATE: false,
    WEBHOOK_ALLOW_HTTP: false,
    WEBHOOK_TIMEOUT: 10_000,
    TOKEN_PREFIX: 'cio',
    REGISTRY_SCHEMA: 'builtin',
    TOKEN_EXPIRY_DB_SCHEMA: 'token_expiry',
    EXPIRY_REMINDERS: [
      { key: '7d', beforeExpiryMs: 7 * 86_400_000 },
      { key: '1d', beforeExpiryMs: 86_400_000 },
    ],
    EXPIRED_NOTICE: true,
    EXPIRY_REMINDER_MENU: ['30d', '14d', '7d', '3d', '1d', '12h'].map((key) => ({ key, beforeExpiryMs: expect.any(Number) })),
    EXPIRY_SPREAD: 15 * 60_000,
    EXPIRY_START_DELAY: true,
    EXPIRY_DIGEST_WINDOW: 3_600_000,
    EXPIRY_EMAILS: 'send',
    WORKER_MAX_CACHED_WORKFLOWS: 100,
    API_PORT: 3000,
    API_HOST: '127.0.0.1',
    SWEEP_INTERVAL: '1d',
    TOKEN_DISCOVERY_INTERVAL: 60_000,
    LOG_LEVEL: 'INFO',
  });
  expect(temporalConnectionOptions(config)).toEqual({ address: '127.0.0.1:7233' });
});

test('an empty variable counts as not set, as with `FOO= cmd` in a shell', () => {
  expect(loadConfig({ API_PORT: '', EXPIRY_REMINDERS: '', TEMPORAL_NAMESPACE: '' })).toMatchObject({
    API_PORT: 3000,
    EXPIRY_REMINDERS: [{ key: '7d' }, { key: '1d' }],
    TEMPORAL_NAMESPACE: 'default',
  });
});

test('reminders are read in any order, deduplicated, largest first; empty entries are ignored', () => {
  expect(loadConfig({ EXPIRY_REMINDERS: '1d, 30d,24h,90s' }).EXPIRY_REMINDERS.map((r) => r.key)).toEqual(['30d', '1d', '90s']);
  expect(loadConfig({ EXPIRY_REMINDERS: '7d,,1d,' }).EXPIRY_REMINDERS.map((r) => r.key)).toEqual(['7d', '1d']);
});

test('a flag takes true/false, 1/0 and yes/no in any case', () => {
  const flag = (value: string) => loadConfig({ EXPIRED_NOTICE: value }).EXPIRED_NOTICE;
  expect(['true', '1', 'yes', ' YES ', 'True'].map(flag)).toEqual([true, true, true, true, true]);
  expect(['false', '0', 'no', 'NO'].map(flag)).toEqual([false, false, false, false]);
  expect(loadConfig({ EXPIRY_START_DELAY: 'false', TEMPORAL_TLS: 'yes' })).toMatchObject({ EXPIRY_START_DELAY: false, TEMPORAL_TLS: true });
});

test('the spread and the digest window are durations, or 0 to turn them off', () => {
  expect(loadConfig({ EXPIRY_SPREAD: '30m', EXPIRY_DIGEST_WINDOW: '2h' })).toMatchObject({ EXPIRY_SPREAD: 1_800_000, EXPIRY_DIGEST_WINDOW: 7_200_000 });
  expect(loadConfig({ EXPIRY_SPREAD: '0', EXPIRY_DIGEST_WINDOW: '0' })).toMatchObject({ EXPIRY_SPREAD: 0, EXPIRY_DIGEST_WINDOW: 0 });
  expect(loadConfig({ EXPIRY_SPREAD: ' 0 ', EXPIRY_DIGEST_WINDOW: ' 0' })).toMatchObject({ EXPIRY_SPREAD: 0, EXPIRY_DIGEST_WINDOW: 0 });
});

test('set values are taken as given, normalized where docs/operations.md says', () => {
  const given = {
    DATABASE_URL: 'postgresql://app@db.internal:5432/registry',
    TEMPORAL_NAMESPACE: 'registry-prod',
    TEMPORAL_TASK_QUEUE: 'token-expiry-eu',
    TEMPORAL_TLS_CA_PATH: '/etc/temporal/ca.pem',
    POSTMARK_SERVER_TOKEN: 'server-token-1234',
    POSTMARK_API_URL: 'http://127.0.0.1:3100',
    TOKEN_PREFIX: 'abcdefghij_12345',
    EXPIRY_EMAILS: 'send',
    SWEEP_INTERVAL: '12h',
  };
  const config = loadConfig({
    ...given,
    REGISTRY_URL: 'https://crates.io//',
    EXPIRY_EMAIL_ALLOWLIST: ' Ops@Example.org ,@Staff.example,',
    EMAIL_MAX_PER_SECOND: '2.5',
    WORKER_MAX_CACHED_WORKFLOWS: '0',
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '4',
    WORKER_MAX_CONCURRENT_ACTIVITY_POLLS: '5',
    API_PORT: '8080',
    METRICS_PORT: '9464',
    LOG_LEVEL: 'warn',
  });
  expect(config).toMatchObject({
    ...given,
    // No trailing slash, so links are "<REGISTRY_URL>/settings/...", never "//settings".
    REGISTRY_URL: 'https://crates.io',
    EXPIRY_EMAIL_ALLOWLIST: ['ops@example.org', '@staff.example'],
    EMAIL_MAX_PER_SECOND: 2.5,
    WORKER_MAX_CACHED_WORKFLOWS: 0,
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: 4,
    WORKER_MAX_CONCURRENT_ACTIVITY_POLLS: 5,
    API_PORT: 8080,
    METRICS_PORT: 9464,
    LOG_LEVEL: 'WARN',
  });
  expect(['trace', 'DEBUG', 'Info', 'error'].map((level) => loadConfig({ LOG_LEVEL: level }).LOG_LEVEL)).toEqual(['TRACE', 'DEBUG', 'INFO', 'ERROR']);
  loadConfig({}); // the logger back at INFO for the rest of the file
});

/** The error loadConfig throws for this environment, one line per bad variable, sorted. */
function configErrors(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split('\n').sort();
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

test('every bad variable is named in one error, with what it expected', () => {
  expect(
    configErrors({
      EXPIRY_REMINDERS: '7x',
      EXPIRED_NOTICE: 'maybe',
      EXPIRY_EMAILS: 'loud',
      API_AUTH_TOKEN: 'short',
      REGISTRY_URL: 'ftp://x',
      EXPIRY_SPREAD: 'soon',
      EXPIRY_DIGEST_WINDOW: '1 hour',
      TOKEN_DISCOVERY_INTERVAL: '-1m',
    }),
  ).toEqual([
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

test.each([
  [{ EXPIRY_SPREAD: '7x' }, 'EXPIRY_SPREAD: "7x" is not a duration (use e.g. 7d, 12h, 30m, 45s, or 0)'],
  [{ EXPIRY_DIGEST_WINDOW: '1 hour' }, 'EXPIRY_DIGEST_WINDOW: "1 hour" is not a duration (use e.g. 7d, 12h, 30m, 45s, or 0 for no digests)'],
  [{ SWEEP_INTERVAL: 'soon' }, 'SWEEP_INTERVAL: is not a duration (use e.g. 7d, 12h, 30m, 45s)'],
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: expected TRACE, DEBUG, INFO, WARN or ERROR'],
  [{ REGISTRY_NAME: 'crates\nio' }, 'REGISTRY_NAME: REGISTRY_NAME must be a single line'],
  [{ EMAIL_FROM: 'a <a@b.example>\r\nBcc: x@y.example' }, 'EMAIL_FROM: EMAIL_FROM must be a single line'],
  [{ POSTMARK_API_URL: 'httpsx://api.example' }, 'POSTMARK_API_URL: expected an http(s) URL'],
  [{ POSTMARK_API_URL: 'xhttp://api.example' }, 'POSTMARK_API_URL: expected an http(s) URL'],
  [{ TOKEN_PREFIX: 'CIO' }, 'TOKEN_PREFIX: expected 1-16 of a-z, 0-9, _'],
  [{ TOKEN_PREFIX: 'ci-o' }, 'TOKEN_PREFIX: expected 1-16 of a-z, 0-9, _'],
  [{ TOKEN_PREFIX: '-cio' }, 'TOKEN_PREFIX: expected 1-16 of a-z, 0-9, _'],
  [{ TOKEN_PREFIX: 'abcdefghij_123456' }, 'TOKEN_PREFIX: expected 1-16 of a-z, 0-9, _'],
  [{ API_PORT: '65536' }, 'API_PORT: Too big: expected number to be <=65535'],
  [{ METRICS_PORT: '70000' }, 'METRICS_PORT: Too big: expected number to be <=65535'],
  [{ WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '1' }, 'WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: Too small: expected number to be >=2'],
  [{ EMAIL_MAX_PER_SECOND: '0' }, 'EMAIL_MAX_PER_SECOND: Too small: expected number to be >0'],
  [{ WEBHOOK_TIMEOUT: '5m' }, 'WEBHOOK_TIMEOUT: "5m" is not a duration between 1s and 60s (e.g. 10s)'],
  [{ WEBHOOK_ALLOW_PRIVATE: 'sometimes' }, 'WEBHOOK_ALLOW_PRIVATE: expected true or false'],
])('%j is refused: %s', (env, line) => {
  expect(configErrors(env)).toEqual([line]);
});

test('the worker needs a Postmark token; the error says which one', () => {
  expect(requirePostmarkToken(loadConfig({ POSTMARK_SERVER_TOKEN: 'server-token-1234' }))).toBe('server-token-1234');
  expect(() => requirePostmarkToken(loadConfig({}))).toThrow(
    new ConfigError('POSTMARK_SERVER_TOKEN: is required to send email (the Server API token from Postmark)'),
  );
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
