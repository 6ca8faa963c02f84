#!/usr/bin/env node
// token-expiry: the command line for operators and for trying the system by hand. Prints JSON on stdout.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { ConfigError, loadConfig, type Config } from '../config';
import { DURATION_HINT, parseDuration } from '../duration';
import { InstanceError, withInstance } from '../db/instance';
import { migrate, MigrationError } from '../db/migrate';
import { createPool } from '../db/pool';
import { registryAdapter } from '../registry';
import { checkRegistryAccess, RegistryAccessError, registrySql } from '../registry/grants';
import { SQL_NAME } from '../db/sqlName';
import { lazyClient, type LazyClient } from '../temporal/connection';
import type { Pool } from 'pg';
import type { RegistryAdapter } from '../registry/adapter';
import { progressReporter, runBackfill } from '../sweep/backfill';
import { recheckHorizonMs } from '../sweep/schedule';
import { createTokenService, TokenError, type TokenService } from '../tokens/service';
import { presentPreferences } from '../api/present';
import { parseDayList, type PreferenceChange } from '../preferences/rules';
import { createPreferenceService, type PreferenceService } from '../preferences/service';
import { createCalendarService } from '../calendar/service';
import { createWebhookService } from '../webhooks/service';
import { FORECAST_MAX_DAYS, forecast, forecastChart } from '../tokenExpiry/forecast';
import { ownersPlans, replanProgressReporter, runReplan } from '../tokenExpiry/replan';

const USAGE = `usage:
  token-expiry migrate
  token-expiry registry-sql --role NAME [--trigger [--trigger-schema NAME]]
  token-expiry worker
  token-expiry api
  token-expiry users add --login L --email E [--unverified]
  token-expiry tokens create --user L --name N [--expires-in 90d | --expires-at ISO]
                             [--crate-scope P]... [--endpoint-scope S]...
  token-expiry tokens revoke|duplicate|rotate|status ID
  token-expiry preferences show|reset --user L
  token-expiry preferences set --user L [--reminders 3d,12h|none|default] [--expired-notice true|false|default]
                               [--time-zone Europe/Berlin|default] [--waking-hours 09:00-18:00|default]
                               [--working-days mon-fri|default]
  token-expiry backfill [--page-size 500] [--concurrency 50] [--recheck-within 9d|all]
  token-expiry forecast [--days 30]
  token-expiry calendar link|off --user L
  token-expiry webhook show|rotate|off --user L
  token-expiry webhook set --user L --url https://... [--channels email,webhook|webhook]
  token-expiry replan [--concurrency 16]`;

/** The user's mistake: printed without a stack trace, exit code 2. */
class UsageError extends Error {}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const login = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$/, 'must be 1-39 letters, digits, - or _');
const email = z.email().max(254);

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UsageError(`${what}: ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  return parsed.data;
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

function parse(args: string[], options: Options, positionals: number): { values: Values; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
    if (parsed.positionals.length !== positionals) throw new Error(`expected ${positionals} argument(s)`);
    return parsed;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
}

const optionalString = (values: Values, name: string) => values[name] as string | undefined;
const stringList = (values: Values, name: string) => (values[name] as string[] | undefined) ?? null;

function expiryFrom(values: Values, now: Date): Date | null {
  const expiresIn = optionalString(values, 'expires-in');
  const expiresAt = optionalString(values, 'expires-at');
  if (expiresIn !== undefined && expiresAt !== undefined) {
    throw new UsageError('give either --expires-in or --expires-at, not both');
  }
  if (expiresIn !== undefined) {
    const ms = parseDuration(expiresIn);
    if (ms === null) throw new UsageError(`--expires-in: "${expiresIn}" is not a duration (${DURATION_HINT})`);
    return new Date(now.getTime() + ms);
  }
  if (expiresAt !== undefined) {
    // Only full ISO 8601 timestamps with a zone: "03/04/2026" means different days to different people.
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(expiresAt)) {
      throw new UsageError(`--expires-at: "${expiresAt}" is not an ISO 8601 time with a zone (use e.g. 2027-01-31T12:00:00Z)`);
    }
    const date = new Date(expiresAt);
    // Date() rolls impossible times over (February 30 becomes March 1 or 2, 24:00 the next day): refuse them.
    const impossible = Number(expiresAt.slice(11, 13)) > 23 || !z.iso.date().safeParse(expiresAt.slice(0, 10)).success;
    if (Number.isNaN(date.getTime()) || impossible) throw new UsageError(`--expires-at: "${expiresAt}" is not a valid time`);
    return date;
  }
  return null;
}

async function run(argv: string[]): Promise<void> {
  const [group, action, ...rest] = argv;
  const environment: Config = loadConfig();
  const db = createPool(environment.DATABASE_URL, 2, environment.TOKEN_EXPIRY_DB_SCHEMA);
  const temporal = lazyClient(environment);
  // The commands that name workflows (or the instance, as calendar feeds do) read the database's instance id
  // (worker and api read it themselves).
  const namesWorkflows = ['tokens', 'backfill', 'replan', 'preferences', 'calendar'].includes(group ?? '');
  try {
    const config = namesWorkflows ? await withInstance(db, environment) : environment;
    const registry = registryAdapter(config);
    const tokens = createTokenService({ db, registry, temporal: temporal.get, config });
    const preferences = createPreferenceService({ db, registry, temporal: temporal.get, config });
    const command = COMMANDS.get(group ?? '');
    if (command && (await command({ action, rest, config, db, temporal, tokens, preferences, registry }))) return;
    throw new UsageError(USAGE);
  } finally {
    await db.end().catch(() => undefined);
    await temporal.close();
  }
}

/** What every command is handed: the program builds each of these once. */
interface Cli {
  action: string | undefined;
  rest: string[];
  config: Config;
  db: Pool;
  temporal: LazyClient;
  tokens: TokenService;
  preferences: PreferenceService;
  registry: RegistryAdapter;
}

/** One function per command; false: not a command of this group (the caller prints the usage). */
const COMMANDS = new Map<string, (cli: Cli) => Promise<boolean>>([
  ['migrate', migrateCommand],
  ['registry-sql', registrySqlCommand],
  ['worker', workerCommand],
  ['api', apiCommand],
  ['backfill', backfillCommand],
  ['forecast', forecastCommand],
  ['replan', replanCommand],
  ['users', usersCommand],
  ['preferences', preferencesCommand],
  ['calendar', calendarCommand],
  ['webhook', webhookCommand],
  ['tokens', tokensCommand],
]);

async function migrateCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db, registry } = cli;
  parse([action, ...rest].filter((a): a is string => a !== undefined), {}, 0);
  const migrated = await migrate(db, {
    schema: config.TOKEN_EXPIRY_DB_SCHEMA,
    registry: config.REGISTRY_SCHEMA,
    instance: config.TOKEN_EXPIRY_INSTANCE,
  });
  await checkRegistryAccess(db, registry);
  print(migrated);
  return true;
}

async function registrySqlCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, registry } = cli;
  // SQL for the registry's DBA, on stdout as is (not JSON): pipe it into psql.
  const { values } = parse(
    [action, ...rest].filter((a): a is string => a !== undefined),
    { role: { type: 'string' }, trigger: { type: 'boolean' }, 'trigger-schema': { type: 'string' } },
    0,
  );
  const role = check(z.string().regex(SQL_NAME, 'must be a lower-case SQL identifier, e.g. token_expiry'), values.role, '--role');
  const trigger = values.trigger === true;
  const triggerSchema = check(z.string().regex(SQL_NAME, 'must be a lower-case SQL identifier, e.g. public'), values['trigger-schema'] ?? 'public', '--trigger-schema');
  if (triggerSchema === config.TOKEN_EXPIRY_DB_SCHEMA) {
    throw new UsageError(`--trigger-schema: ${triggerSchema} is the service's own schema, which its role could drop the function from; name a schema the DBA owns (default public)`);
  }
  process.stdout.write(
    registrySql({ role, schema: config.TOKEN_EXPIRY_DB_SCHEMA, registry: registry, trigger, triggerSchema }),
  );
  return true;
}

async function workerCommand(cli: Cli): Promise<boolean> {
  const { config, db } = cli;
  await db.end();
  const { runWorker } = await import('./worker.js');
  await runWorker(config);
  return true;
}

async function apiCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db } = cli;
  // Serves until SIGINT/SIGTERM with a pool and Temporal client of its own.
  parse([action, ...rest].filter((a): a is string => a !== undefined), {}, 0);
  await db.end();
  const { runApi } = await import('./api.js');
  await runApi(config);
  return true;
}

async function backfillCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db, temporal, registry } = cli;
  // Starts missing expiry workflows and restarts stopped ones now; progress on stderr, summary on stdout.
  const { values } = parse([action, ...rest].filter((a): a is string => a !== undefined), {
    'page-size': { type: 'string' },
    concurrency: { type: 'string' },
    'recheck-within': { type: 'string' },
  }, 0);
  const count = z.coerce.number().int().min(1).max(10_000);
  // By default it looks as far ahead as the scheduled sweep; "all" looks up every future token's workflow.
  const recheckWithin = optionalString(values, 'recheck-within');
  const recheckWithinMs =
    recheckWithin === undefined ? recheckHorizonMs(config)
    : recheckWithin === 'all' ? undefined
    : parseDuration(recheckWithin);
  if (recheckWithinMs === null) {
    throw new UsageError(`--recheck-within: "${recheckWithin}" is not a duration (${DURATION_HINT}) or "all"`);
  }
  const concurrency = check(count, values.concurrency ?? '50', '--concurrency');
  const pageSize = check(count, values['page-size'] ?? '500', '--page-size');
  const sweep = { db, registry, client: await temporal.get(), config, now: () => new Date(), concurrency };
  // Failures are counted and shown in the summary; log lines would tear the progress bar.
  const quiet = { info: () => undefined, warn: () => undefined };
  const progress = progressReporter(process.stderr);
  const summary = await runBackfill({ ...sweep, log: quiet }, { pageSize, recheckWithinMs }, progress.update)
    .finally(progress.finish);
  print(summary);
  if (summary.failed > 0) {
    process.stderr.write(`token-expiry: ${summary.failed} token(s) failed (see "failures"); run backfill again\n`);
  }
  return true;
}

async function forecastCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db } = cli;
  // Reminders and emails due per UTC day, from the database; a bar chart beside it on a terminal.
  const { values } = parse([action, ...rest].filter((a): a is string => a !== undefined), { days: { type: 'string' } }, 0);
  const days = check(z.coerce.number().int().min(1).max(FORECAST_MAX_DAYS), values.days ?? '30', '--days');
  const result = await forecast(db, config, { now: new Date(), days });
  print(result);
  if (process.stderr.isTTY) process.stderr.write(forecastChart(result));
  return true;
}

async function replanCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db, temporal } = cli;
  // Each waiting workflow its owner's plan (today's EXPIRY_REMINDERS and EXPIRED_NOTICE for those who never
  // chose); progress on stderr, summary on stdout.
  const { values } = parse([action, ...rest].filter((a): a is string => a !== undefined), { concurrency: { type: 'string' } }, 0);
  const concurrency = check(z.coerce.number().int().min(1).max(64), values.concurrency ?? '16', '--concurrency');
  const progress = replanProgressReporter(process.stderr);
  const planFor = ownersPlans(db, config);
  const summary = await runReplan(await temporal.get(), config, { concurrency, planFor }, progress.update).finally(progress.finish);
  print(summary);
  if (summary.failed > 0) {
    process.stderr.write(`token-expiry: ${summary.failed} workflow(s) failed (see "failures"); run replan again\n`);
  }
  return true;
}

async function usersCommand(cli: Cli): Promise<boolean> {
  const { action, rest, tokens } = cli;
  if (action !== 'add') return false;
  const { values } = parse(rest, {
    login: { type: 'string' },
    email: { type: 'string' },
    unverified: { type: 'boolean' },
  }, 0);
  const user = {
    login: check(login, values.login, '--login'),
    email: check(email, values.email, '--email'),
    verified: !values.unverified,
  };
  try {
    print({ ...(await tokens.addUser(user)), verified: user.verified });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new UsageError(`--login: "${user.login}" is taken`);
    throw err;
  }
  return true;
}

async function preferencesCommand(cli: Cli): Promise<boolean> {
  const { action, rest, tokens, preferences } = cli;
  if (action !== 'show' && action !== 'set' && action !== 'reset') return false;
  const { values } = parse(rest, {
    user: { type: 'string' },
    ...(action === 'set'
      ? {
          reminders: { type: 'string' },
          'expired-notice': { type: 'string' },
          'time-zone': { type: 'string' },
          'waking-hours': { type: 'string' },
          'working-days': { type: 'string' },
        }
      : {}),
  } as Options, 0);
  const owner = await tokens.user(check(login, values.user, '--user'));
  if (action === 'show') print(presentPreferences(await preferences.get(owner)));
  else if (action === 'reset') print(presentPreferences(await preferences.reset(owner)));
  else {
    const change = preferenceChange(values);
    if (Object.keys(change).length === 0) throw new UsageError(`preferences set: name at least one preference to change\n${USAGE}`);
    print(presentPreferences(await preferences.update(owner, change)));
  }
  return true;
}

async function calendarCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db, tokens, registry } = cli;
  // A new secret feed link (the old one stops working), or the feed turned off.
  if (action !== 'link' && action !== 'off') return false;
  const { values } = parse(rest, { user: { type: 'string' } }, 0);
  const owner = await tokens.user(check(login, values.user, '--user'));
  const calendar = createCalendarService({ db, registry, config });
  print(action === 'link' ? await calendar.newLink(owner) : { removed: await calendar.removeLink(owner) });
  return true;
}

async function webhookCommand(cli: Cli): Promise<boolean> {
  const { action, rest, config, db, tokens } = cli;
  // The user's webhook: its secret is printed once, when set for the first time and on rotate (docs/webhooks.md).
  if (!['show', 'set', 'rotate', 'off'].includes(action ?? '')) return false;
  const { values } = parse(rest, { user: { type: 'string' }, url: { type: 'string' }, channels: { type: 'string' } }, 0);
  const owner = await tokens.user(check(login, values.user, '--user'));
  const webhooks = createWebhookService({ db, config });
  if (action === 'show') print({ webhook: await webhooks.get(owner) });
  else if (action === 'rotate') print({ webhook: await webhooks.rotateSecret(owner) });
  else if (action === 'off') print({ removed: await webhooks.remove(owner) });
  else {
    const channels = typeof values.channels === 'string' ? values.channels.split(',').map((c) => c.trim()) : undefined;
    print({ webhook: await webhooks.set(owner, { url: check(z.string(), values.url, '--url'), channels }) });
  }
  return true;
}

async function tokensCommand(cli: Cli): Promise<boolean> {
  const { action, rest, tokens } = cli;
  if (action === 'create') {
    const { values } = parse(rest, {
      user: { type: 'string' },
      name: { type: 'string' },
      'expires-in': { type: 'string' },
      'expires-at': { type: 'string' },
      'crate-scope': { type: 'string', multiple: true },
      'endpoint-scope': { type: 'string', multiple: true },
    }, 0);
    const owner = await tokens.user(check(login, values.user, '--user'));
    const created = await tokens.create(owner, {
      name: check(z.string(), values.name, '--name'),
      expiresAt: expiryFrom(values, new Date()),
      crateScopes: stringList(values, 'crate-scope'),
      endpointScopes: stringList(values, 'endpoint-scope'),
    });
    print(showCreated(created));
    return true;
  }
  if (action === 'revoke' || action === 'duplicate' || action === 'rotate' || action === 'status') {
    const id = parse(rest, {}, 1).positionals[0] as string;
    if (action === 'revoke') print(await tokens.revoke(id));
    else if (action === 'status') print(await tokens.status(id));
    else print(showCreated(await tokens[action](id)));
    return true;
  }
  return false;
}

/** `preferences set`'s options as a change: "default" goes back to the operator's setting. */
function preferenceChange(values: Values): PreferenceChange {
  const option = (name: string) => optionalString(values, name);
  const change: PreferenceChange = {};
  const reminders = option('reminders');
  if (reminders !== undefined) {
    change.reminders = reminders === 'default' ? null : reminders === 'none' ? [] : reminders.split(',').map((r) => r.trim()).filter(Boolean);
  }
  const expiredNotice = option('expired-notice');
  if (expiredNotice !== undefined) {
    if (!['true', 'false', 'default'].includes(expiredNotice)) throw new UsageError(`--expired-notice: "${expiredNotice}" is not true, false or default`);
    change.expiredNotice = expiredNotice === 'default' ? null : expiredNotice === 'true';
  }
  const timeZone = option('time-zone');
  if (timeZone !== undefined) change.timeZone = timeZone === 'default' ? null : timeZone;
  const wakingHours = option('waking-hours');
  if (wakingHours !== undefined) change.wakingHours = wakingHours === 'default' ? null : wakingHours;
  const workingDays = option('working-days');
  if (workingDays !== undefined) change.workingDays = workingDays === 'default' ? null : parseDayList(workingDays).filter(Boolean);
  return change;
}

/** The secret is shown once, here, and never stored. */
function showCreated<T extends { token: object; secret: string }>(created: T) {
  const { token, secret, ...rest } = created;
  return { ...token, token: secret, ...rest };
}

run(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof TokenError || err instanceof RegistryAccessError || err instanceof MigrationError || err instanceof InstanceError) {
      process.stderr.write(`token-expiry: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`token-expiry: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
