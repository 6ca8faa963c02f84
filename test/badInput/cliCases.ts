/**
 * The command line's bad-input table, generated: each option of each command crossed with values it must
 * refuse, plus unknown options and commands, missing and extra arguments, ids that are not ids, and a
 * broken environment. Every one must end with exit code 2, a message on stderr and nothing on stdout.
 */

export interface CliCase {
  category: string;
  args: string[];
  /** Extra environment (a bad setting). */
  env?: Record<string, string>;
  /** Part of the message the user must see, when the case is about one option. */
  mentions?: string;
}

export interface CliCaseContext {
  /** An existing user (a token owner) and a token of theirs. */
  login: string;
  tokenId: string;
  now: Date;
}

export function cliCases(ctx: CliCaseContext): CliCase[] {
  const cases: CliCase[] = [];
  const year = ctx.now.getUTCFullYear() + 2;
  const add = (category: string, args: string[], mentions?: string, env?: Record<string, string>) =>
    cases.push({ category, args, ...(mentions ? { mentions } : {}), ...(env ? { env } : {}) });

  // users add: --login and --email x what they refuse (the other option valid and unused).
  const badLogins = ['', 'a b', 'a'.repeat(40), 'ålice', 'alice\n', "alice'; DROP TABLE users;--", 'al/ice', '_alice', '-alice', '🔑'];
  badLogins.forEach((value) => add('users add --login', ['users', 'add', `--login=${value}`, '--email', 'new@example.com'], '--login'));
  const badEmails = ['', 'not-an-email', 'a@', '@example.com', 'a@b', 'a@@example.com', 'a b@example.com', 'a@example.com\r\nBcc: x@example.com',
    `${'a'.repeat(250)}@example.com`, '<a@example.com>', 'a@example.com,b@example.com', 'ü@example.com', "x'; DROP TABLE emails;--@example.com"];
  badEmails.forEach((value) => add('users add --email', ['users', 'add', '--login', 'newcomer', `--email=${value}`], '--email'));
  add('users add', ['users', 'add', '--login', 'newcomer'], '--email');
  add('users add', ['users', 'add', '--email', 'new@example.com'], '--login');
  add('users add', ['users', 'add', '--login', 'newcomer', '--email', 'new@example.com', '--admin']);
  add('users add', ['users', 'add', '--login', 'newcomer', '--email', 'new@example.com', 'extra']);
  add('users add', ['users', 'add', '--login', 'newcomer', '--email', 'new@example.com', '--unverified=yes']);
  add('users add', ['users', 'add', '--login']);
  add('users add', ['users', 'remove', '--login', 'newcomer']);

  // tokens create: each option x values it refuses, everything else valid.
  const create = (...opts: string[]) => ['tokens', 'create', '--user', ctx.login, '--name', 'ci', ...opts];
  for (const value of ['', 'nobody', "x' OR '1'='1", 'u'.repeat(40), ctx.login.toUpperCase(), ' ']) {
    add('tokens create --user', ['tokens', 'create', `--user=${value}`, '--name', 'ci', '--expires-in', '30d']);
  }
  for (const value of ['', '   ', 'a\r\nb', 'line\nbreak', 'x'.repeat(201), 'bell\u0007', 'tab\there', 'esc\u001b[0m']) {
    add('tokens create --name', ['tokens', 'create', '--user', ctx.login, `--name=${value}`, '--expires-in', '30d'], 'name');
  }
  for (const value of ['0d', '-3d', '7x', '1.5d', '', '10000000d', '9999999d', '1w', '1D', '७d', 'P30D']) {
    add('tokens create --expires-in', create(`--expires-in=${value}`), value === '9999999d' ? 'within 10 years' : '--expires-in');
  }
  for (const value of ['2020-01-01T00:00:00Z', '1970-01-01T00:00:00Z', 'next tuesday', `${year}-01-01`, `${year}-01-01T00:00:00`,
    `${year}-02-30T00:00:00Z`, `${year}-04-31T00:00:00Z`, `${year}-01-01T24:00:00Z`, `${year}-13-01T00:00:00Z`, `${year}-01-32T00:00:00Z`,
    `${year}-01-01T25:00:00Z`, '9999-12-31T23:59:59Z', '+275760-09-13T00:00:00Z', '', `${year}-01-01T00:00:00+25:00`]) {
    const mentions = /^(2020|1970)/.test(value) ? 'is in the past' : value.startsWith('9999') ? 'within 10 years' : '--expires-at';
    add('tokens create --expires-at', create(`--expires-at=${value}`), mentions);
  }
  add('tokens create --expires-at', create('--expires-in', '30d', `--expires-at=${year}-01-01T00:00:00Z`), 'not both');
  for (const value of ['bad scope', '', '1abc', 'a**', 'sérde', "serde'--", 'a'.repeat(65)]) {
    add('tokens create --crate-scope', create('--expires-in', '30d', '--crate-scope', 'serde', `--crate-scope=${value}`), 'crate');
  }
  for (const value of ['admin', '', 'YANK', 'publish_new', 'publish-new ']) {
    add('tokens create --endpoint-scope', create('--expires-in', '30d', `--endpoint-scope=${value}`), 'must be one of');
  }
  add('tokens create', ['tokens', 'create', '--name', 'ci'], '--user');
  add('tokens create', ['tokens', 'create', '--user', ctx.login], '--name');
  add('tokens create', create('--expires-in', '30d', '--admin'));
  add('tokens create', create('--expires-in', '30d', 'extra'));
  add('tokens create', create('--expires-in'));

  // revoke, duplicate, rotate, status: ids that are not ids, or not there.
  const badIds = ['0', 'abc', '1.5', '99999999999999999999', "1'; DROP TABLE api_tokens;--", '', '１', '424242', `${ctx.tokenId} `];
  for (const action of ['revoke', 'duplicate', 'rotate', 'status']) {
    for (const id of badIds) add(`tokens ${action}`, ['tokens', action, '--', id], 'no token');
    add(`tokens ${action}`, ['tokens', action, '-1']);
    add(`tokens ${action}`, ['tokens', action]);
    add(`tokens ${action}`, ['tokens', action, ctx.tokenId, ctx.tokenId]);
  }

  // Commands that do not exist, and a broken environment (refused before anything is touched).
  add('command', []);
  add('command', ['frobnicate']);
  add('command', ['tokens']);
  add('command', ['tokens', 'frobnicate', ctx.tokenId]);
  add('command', ['migrate', 'now']);
  add('command', ['backfill', '--page-size', '0']);
  add('command', ['backfill', '--concurrency', 'many']);
  add('command', ['backfill', '--recheck-within', 'soon']);
  const usersAdd = ['users', 'add', '--login', 'newcomer', '--email', 'new@example.com'];
  for (const [name, value] of [['EXPIRY_REMINDERS', '7x'], ['EXPIRY_EMAILS', 'maybe'], ['LOG_LEVEL', 'loud'], ['API_PORT', '99999'],
    ['TOKEN_PREFIX', 'BAD PREFIX'], ['EXPIRED_NOTICE', 'perhaps'], ['POSTMARK_API_URL', 'ftp://x'], ['SWEEP_INTERVAL', 'hourly']] as const) {
    add('environment', usersAdd, name, { [name]: value });
  }
  return cases;
}
