// The API's endpoints: what each one accepts, does and answers, and how the OpenAPI document describes it.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { Config } from '../config';
import type { z } from 'zod';
import { pingDatabase } from '../db/pool';
import type { UserRow } from '../registry/adapter';
import { FORECAST_MAX_DAYS, forecast } from '../tokenExpiry/forecast';
import { STATUS_DEADLINE_MS } from '../tokenExpiry/client';
import type { PreferenceChange } from '../preferences/rules';
import type { PreferenceService } from '../preferences/service';
import type { CalendarService } from '../calendar/service';
import type { WebhookService, WebhookView } from '../webhooks/service';
import { checkUnsubscribe } from '../email/unsubscribe';
import { TokenError, type TokenService } from '../tokens/service';
import { ApiError, describeIssues, errorBody, type Reply } from './http';
import { presentCreated, presentExpiry, presentExpiryStart, presentPreferences, presentToken } from './present';
import {
  createdTokenResponse,
  createTokenRequest,
  emptyRequest,
  expiryResponse,
  forecastQuery,
  forecastResponse,
  expiryRefreshResponse,
  healthResponse,
  calendarLinkResponse,
  webhookRequest,
  webhookResponse,
  listQuery,
  preferenceRequest,
  preferencesResponse,
  tokenListResponse,
  tokenResponse,
  type HealthJson,
  type HealthState,
} from './schemas';

export interface RouteDeps {
  /** The clock signed links are dated against; the system's by default. */
  now?: () => Date;
  tokens: TokenService;
  preferences: PreferenceService;
  calendar: CalendarService;
  webhooks: WebhookService;
  db: Pool;
  temporal: () => Promise<Client>;
  config: Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_DIGEST_WINDOW' | 'EXPIRY_REMINDER_MENU' | 'UNSUBSCRIBE_SECRET' | 'REGISTRY_NAME'>;
}

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

interface RouteDoc {
  summary: string;
  description?: string;
  /** A schema registered in requestSchemas. */
  request?: z.ZodType;
  /** The success reply: status, and a schema registered in responseSchemas (none for 204). */
  success: { status: number; description: string; schema?: z.ZodType };
  /** Error statuses this endpoint can answer beyond the common ones: what they mean (and the body, if not Errors). */
  errors?: Record<number, string | { description: string; schema: z.ZodType }>;
  query?: { name: string; description: string; schema: object }[];
}

interface RequestContext<User> {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  user: User;
}

export interface Route {
  method: Method;
  /** e.g. /api/v1/me/tokens/:id; also the `route` field of the request's log line. */
  path: string;
  /**
   * 'user': needs the registry's service token, and acts for the user named in X-Registry-User.
   * 'service': needs the service token, and acts for the registry itself (no user).
   */
  access: 'public' | 'user' | 'service';
  /** Validates the JSON body; without one, the endpoint takes no body. 'form': a form body, passed as is. */
  body?: { schema: z.ZodType; optional: boolean } | 'form';
  doc: RouteDoc;
  handle(ctx: RequestContext<UserRow | null>): Promise<Reply>;
}

function userRoute(route: Omit<Route, 'access' | 'handle'> & { handle(ctx: RequestContext<UserRow>): Promise<Reply> }): Route {
  return {
    ...route,
    access: 'user',
    handle: (ctx) => {
      if (!ctx.user) throw new Error(`${route.path}: no user resolved`);
      return route.handle({ ...ctx, user: ctx.user });
    },
  };
}

/** A DELETE that turns one of the user's things off (idempotent); the log says whether there was one. */
function turnOffRoute(path: string, summary: string, description: string, remove: (user: UserRow) => Promise<boolean>): Route {
  return userRoute({
    method: 'DELETE',
    path,
    doc: { summary, description, success: { status: 204, description: 'Off.' } },
    async handle({ user }) {
      return { status: 204, log: { removed: await remove(user) } };
    },
  });
}

/** Calls to Temporal get a deadline: without one, a hung server would hang the request. */
const TEMPORAL_DEADLINE_MS = 10_000;
/** A preference change re-plans the user's waiting workflows before it answers (bench preferences-replan: 1,000 runs). */
const REPLAN_DEADLINE_MS = 60_000;
const HEALTH_TIMEOUT_MS = 3_000;

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The service's field names, as the wire spells them. */
const WIRE_FIELDS: Record<string, string> = {
  name: 'name',
  expiresAt: 'expired_at',
  crateScopes: 'crate_scopes',
  endpointScopes: 'endpoint_scopes',
};

/** The preference service's field names, as the wire spells them. */
const PREFERENCE_WIRE_FIELDS: Record<string, string> = {
  reminders: 'reminders',
  expiredNotice: 'expired_notice',
  timeZone: 'time_zone',
  wakingHours: 'waking_hours',
  workingDays: 'working_days',
};

/** A refused preference change: 422, each error naming its field as the request spells it. */
function asPreferenceApiError(err: unknown): unknown {
  if (!(err instanceof TokenError) || err.kind !== 'invalid') return asApiError(err);
  return new ApiError(422, err.issues.map(({ path: [field], message }) => `preferences.${PREFERENCE_WIRE_FIELDS[String(field)] ?? String(field)}: ${message}`));
}

const ERROR_STATUS = { 'not-found': 404, conflict: 409, 'read-only': 403 } as const;

/** A refused webhook change: 400, each error naming its field as the request spells it. */
function asWebhookApiError(err: unknown): unknown {
  if (!(err instanceof TokenError) || err.kind !== 'invalid') return asApiError(err);
  return new ApiError(400, err.issues.map(({ path: [field], message }) => `webhook.${String(field)}: ${message}`));
}

function presentWebhook(webhook: WebhookView) {
  return {
    webhook: {
      url: webhook.url,
      channels: webhook.channels,
      created_at: webhook.createdAt.toISOString(),
      rotated_at: webhook.rotatedAt.toISOString(),
      ...(webhook.secret ? { secret: webhook.secret } : {}),
    },
  };
}

/** Service errors are the caller's mistakes; anything else is ours. */
export function asApiError(err: unknown): unknown {
  if (!(err instanceof TokenError)) return err;
  if (err.kind !== 'invalid') return new ApiError(ERROR_STATUS[err.kind], err.message);
  const details = err.issues.map(({ path: [field, ...rest], message }) => {
    const where = rest.reduce<string>((at, key) => (typeof key === 'number' ? `${at}[${key}]` : `${at}.${key}`), `api_token.${WIRE_FIELDS[String(field)] ?? String(field)}`);
    return `${where}: ${message}`;
  });
  return new ApiError(422, details.length > 0 ? details : [err.message]);
}

export function apiRoutes(deps: RouteDeps): Route[] {
  /**
   * Runs `work` with a deadline on every Temporal call it makes (without Temporal it runs as is: the service
   * copes), and turns what it throws into an ApiError.
   */
  async function withTemporalDeadlineAndApiErrors<T>(work: () => Promise<T>, ms = TEMPORAL_DEADLINE_MS): Promise<T> {
    const client = await deps.temporal().catch(() => undefined);
    try {
      return client ? await client.withDeadline(Date.now() + ms, work) : await work();
    } catch (err) {
      throw asApiError(err);
    }
  }

  /**
   * Anyone may call this (no token), so it says only ok or unavailable per dependency: the reason (a host
   * name, "password authentication failed for user ...") goes to the request's log line, not to the caller.
   */
  async function health(): Promise<Reply> {
    const failures: Record<string, string> = {};
    const probe = async (name: 'database' | 'temporal', work: () => Promise<unknown>): Promise<HealthState> => {
      try {
        await within(HEALTH_TIMEOUT_MS, work());
        return 'ok';
      } catch (err) {
        failures[`${name}Error`] = (err as Error).message;
        return 'unavailable';
      }
    };
    const [database, temporal] = await Promise.all([
      probe('database', () => pingDatabase(deps.db)),
      probe('temporal', async () => {
        const client = await deps.temporal();
        await client.withDeadline(Date.now() + HEALTH_TIMEOUT_MS, () => client.workflowService.getSystemInfo({}));
      }),
    ]);
    const down = Object.entries({ database, temporal }).filter(([, state]) => state !== 'ok');
    const body: HealthJson = { database, temporal };
    if (down.length === 0) return { status: 200, body };
    return { status: 503, body: { ...body, ...errorBody(down.map(([name, state]) => `${name}: ${state}`)) }, log: failures };
  }

  /** A change, then its replan: Temporal calls that do not answer in time count as failed runs, not as an error. */
  async function changePreferences(user: UserRow, change: PreferenceChange): Promise<Reply> {
    const client = await deps.temporal().catch(() => undefined);
    const work = () => deps.preferences.update(user, change);
    const view = await (client ? client.withDeadline(Date.now() + REPLAN_DEADLINE_MS, work) : work()).catch((err: unknown) => {
      throw asPreferenceApiError(err);
    });
    return { status: 200, body: presentPreferences(view), log: { replanned: view.replan?.replanned, replanFailed: view.replan?.failed } };
  }

  /** The user whose warnings a signed link names; refused (403) when forged or stale, 404 when off. */
  function unsubscriber(query: URLSearchParams): string {
    if (!deps.config.UNSUBSCRIBE_SECRET) throw new ApiError(404, 'one-click unsubscribe is not configured (UNSUBSCRIBE_SECRET)');
    const checked = checkUnsubscribe(query, deps.config.UNSUBSCRIBE_SECRET, deps.now?.() ?? new Date());
    if ('refused' in checked) {
      throw new ApiError(
        403,
        checked.refused === 'stale'
          ? 'this unsubscribe link has expired: use the link in a newer email, or change your reminder preferences in your account'
          : 'this unsubscribe link is not valid (its signature does not match)',
      );
    }
    return checked.userId;
  }
  const unsubscribeErrors = { 403: 'The link is forged (its signature does not verify) or stale; nothing changes.', 404: 'UNSUBSCRIBE_SECRET is not set.' };

  const idParam = { errors: { 404: 'No such token, or it belongs to another user.' } };
  const readOnly = 'The registry owns its tokens (REGISTRY_SCHEMA other than builtin): create, revoke and rotate them there.';

  return [
    {
      method: 'PUT',
      path: '/api/v1/expiry/tokens/:id',
      access: 'service',
      doc: {
        summary: 'Start or refresh a token\'s reminders, from the registry\'s own tables',
        description:
          'For a registry that writes its own tokens and can call us: takes the id only and reads the token from the ' +
          'registry\'s database. Starts its workflow (a running one is kept); for a revoked token, cancels it.',
        success: { status: 200, description: 'The token and its reminders.', schema: expiryRefreshResponse },
        errors: { 404: 'No such token in the registry\'s database.' },
      },
      async handle({ params }) {
        const synced = await withTemporalDeadlineAndApiErrors(() => deps.tokens.syncWorkflow(params.id as string));
        return {
          status: 200,
          body: { api_token: presentToken(synced.token), expiry: presentExpiryStart(synced) },
          log: { workflowWarning: synced.workflowError !== undefined },
        };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/expiry/tokens/:id',
      access: 'service',
      doc: {
        summary: 'Cancel a revoked token\'s reminders',
        description: 'Takes the id only; the token must be revoked in the registry\'s database. Idempotent.',
        success: { status: 204, description: 'Cancelled, or there was nothing running.' },
        errors: {
          404: 'No such token in the registry\'s database.',
          409: 'The token is not revoked in the registry\'s database: revoke it there first.',
        },
      },
      async handle({ params }) {
        const cancelled = await withTemporalDeadlineAndApiErrors(() => deps.tokens.cancelRevokedWorkflow(params.id as string));
        return {
          status: 204,
          log: { workflowCancelled: cancelled.workflowCancelled, workflowWarning: cancelled.workflowError !== undefined },
        };
      },
    },
    {
      method: 'GET',
      path: '/health',
      access: 'public',
      doc: {
        summary: 'Whether the database and Temporal answer',
        success: { status: 200, description: 'Both answer.', schema: healthResponse },
        errors: { 503: { description: 'One or both do not answer; the body names which.', schema: healthResponse } },
      },
      handle: health,
    },
    {
      method: 'GET',
      path: '/api/v1/expiry/forecast',
      access: 'service',
      doc: {
        summary: 'Reminders and emails due per UTC day',
        description: 'As `token-expiry forecast`: for each day from today, the warnings and expired notices still to go out, and the emails they make.',
        success: { status: 200, description: 'One entry per day.', schema: forecastResponse },
        query: [{ name: 'days', description: 'How many days, from today (default 30).', schema: { type: 'integer', minimum: 1, maximum: FORECAST_MAX_DAYS } }],
      },
      async handle({ query }) {
        const parsed = forecastQuery.safeParse(Object.fromEntries(query));
        if (!parsed.success) throw new ApiError(400, describeIssues(parsed.error));
        return { status: 200, body: await forecast(deps.db, deps.config, { now: new Date(), days: parsed.data.days ?? 30 }) };
      },
    },
    userRoute({
      method: 'GET',
      path: '/api/v1/me/tokens',
      doc: {
        summary: 'List the user\'s tokens',
        description: 'As crates.io: tokens that are not revoked, newest first; expired ones only with expired_days.',
        success: { status: 200, description: 'The tokens.', schema: tokenListResponse },
        query: [
          {
            name: 'expired_days',
            description: 'Also list tokens that expired within this many days.',
            schema: { type: 'integer', minimum: 0, maximum: 99_999 },
          },
        ],
      },
      async handle({ user, query }) {
        const parsed = listQuery.safeParse(Object.fromEntries(query));
        if (!parsed.success) throw new ApiError(400, describeIssues(parsed.error));
        const tokens = await deps.tokens.list(user, parsed.data.expired_days ?? 0);
        return { status: 200, body: { api_tokens: tokens.map(presentToken) } };
      },
    }),
    userRoute({
      method: 'PUT',
      path: '/api/v1/me/tokens',
      body: { schema: createTokenRequest, optional: false },
      doc: {
        summary: 'Create a token',
        description:
          'Returns the secret once. A token with an expiry gets a Temporal workflow that emails its owner before it expires.',
        request: createTokenRequest,
        success: { status: 200, description: 'The new token, its secret and its reminders.', schema: createdTokenResponse },
        errors: { 403: readOnly },
      },
      async handle({ user, body }) {
        const { api_token: input } = body as z.output<typeof createTokenRequest>;
        const created = await withTemporalDeadlineAndApiErrors(() =>
          deps.tokens.create(user, {
            name: input.name,
            expiresAt: input.expired_at ? new Date(input.expired_at) : null,
            crateScopes: input.crate_scopes ?? null,
            endpointScopes: input.endpoint_scopes ?? null,
          }),
        );
        return {
          status: 200,
          body: presentCreated(created),
          log: { tokenId: created.token.id, workflowWarning: created.workflowError !== undefined },
        };
      },
    }),
    userRoute({
      method: 'GET',
      path: '/api/v1/me/expiry/preferences',
      doc: {
        summary: 'The user\'s reminder preferences',
        description: 'What the user chose (null: the operator\'s setting), the plan their tokens get, and the lead times on offer.',
        success: { status: 200, description: 'The preferences.', schema: preferencesResponse },
      },
      async handle({ user }) {
        return { status: 200, body: presentPreferences(await deps.preferences.get(user)) };
      },
    }),
    userRoute({
      method: 'PUT',
      path: '/api/v1/me/expiry/preferences',
      body: { schema: preferenceRequest, optional: false },
      doc: {
        summary: 'Change the user\'s reminder preferences',
        description:
          'Absent fields stay, null goes back to the operator\'s setting. Nothing is stored unless every field is valid: a ' +
          'lead time on the menu, a known IANA time zone, a non-empty window. A warning that would fall due outside the ' +
          'waking hours goes out a minute before the end of the window before (earlier, never later); the expired notice at the start of ' +
          'the next. The user\'s waiting workflows take the new plan at once.',
        request: preferenceRequest,
        success: { status: 200, description: 'The preferences now.', schema: preferencesResponse },
      },
      async handle({ user, body }) {
        const { preferences: input } = body as z.output<typeof preferenceRequest>;
        return changePreferences(user, {
          reminders: input.reminders,
          expiredNotice: input.expired_notice,
          timeZone: input.time_zone,
          wakingHours: input.waking_hours,
          workingDays: input.working_days,
        });
      },
    }),
    userRoute({
      method: 'DELETE',
      path: '/api/v1/me/expiry/preferences',
      doc: {
        summary: 'Forget the user\'s reminder preferences',
        description: 'Every field back to the operator\'s setting; the user\'s waiting workflows take that plan at once.',
        success: { status: 200, description: 'The preferences now.', schema: preferencesResponse },
      },
      async handle({ user }) {
        return changePreferences(user, { reminders: null, expiredNotice: null, timeZone: null, wakingHours: null, workingDays: null });
      },
    }),
    userRoute({
      method: 'POST',
      path: '/api/v1/me/expiry/calendar',
      body: { schema: emptyRequest, optional: true },
      doc: {
        summary: 'Make a secret calendar feed link (or replace it)',
        description:
          'An iCalendar (RFC 5545) feed of the user\'s active tokens: one event at each expiry, an alarm per lead time of ' +
          'their plan, a stable UID per token, and the link that makes a replacement. The link is shown once; making a ' +
          'new one stops the old one.',
        request: emptyRequest,
        success: { status: 200, description: 'The new link.', schema: calendarLinkResponse },
      },
      async handle({ user }) {
        return { status: 200, body: { calendar: await deps.calendar.newLink(user) } };
      },
    }),
    turnOffRoute('/api/v1/me/expiry/calendar', 'Turn the calendar feed off', 'Its link stops working. Idempotent.', (user) =>
      deps.calendar.removeLink(user),
    ),
    userRoute({
      method: 'GET',
      path: '/api/v1/me/expiry/webhook',
      doc: {
        summary: "The user's webhook (without its secret)",
        success: { status: 200, description: 'The webhook.', schema: webhookResponse },
        errors: { 404: 'No webhook is set.' },
      },
      async handle({ user }) {
        const webhook = await deps.webhooks.get(user);
        if (!webhook) throw new ApiError(404, 'no webhook is set');
        return { status: 200, body: presentWebhook(webhook) };
      },
    }),
    userRoute({
      method: 'PUT',
      path: '/api/v1/me/expiry/webhook',
      body: { schema: webhookRequest, optional: false },
      doc: {
        summary: 'Set the webhook reminders are posted to (and the channels)',
        description:
          'Each reminder is posted to this URL, signed per the Standard Webhooks specification (docs/webhooks.md). The ' +
          'first PUT makes the signing secret and answers it, once; later PUTs change the URL or channels and keep it. ' +
          'The URL must be https, and its host must resolve outside loopback, private and link-local ranges, unless ' +
          'the operator allows them (WEBHOOK_ALLOW_HTTP, WEBHOOK_ALLOW_PRIVATE). On bad input nothing changes.',
        request: webhookRequest,
        success: { status: 200, description: 'The webhook now; `secret` only when it was made by this request.', schema: webhookResponse },
        errors: { 400: 'The URL or channels are refused; every error names its field.' },
      },
      async handle({ user, body }) {
        const { webhook } = body as z.output<typeof webhookRequest>;
        try {
          return { status: 200, body: presentWebhook(await deps.webhooks.set(user, webhook)) };
        } catch (err) {
          throw asWebhookApiError(err);
        }
      },
    }),
    userRoute({
      method: 'POST',
      path: '/api/v1/me/expiry/webhook/secret',
      body: { schema: emptyRequest, optional: true },
      doc: {
        summary: "Rotate the webhook's signing secret",
        description: 'A new secret, answered once; deliveries from now on are signed with it, and the old one no longer verifies.',
        request: emptyRequest,
        success: { status: 200, description: 'The webhook with its new secret.', schema: webhookResponse },
        errors: { 404: 'No webhook is set.' },
      },
      async handle({ user }) {
        try {
          return { status: 200, body: presentWebhook(await deps.webhooks.rotateSecret(user)) };
        } catch (err) {
          throw asApiError(err);
        }
      },
    }),
    turnOffRoute('/api/v1/me/expiry/webhook', 'Turn the webhook off', 'Reminders go by email only again. Idempotent.', (user) =>
      deps.webhooks.remove(user),
    ),
    {
      method: 'POST',
      path: '/unsubscribe',
      access: 'public',
      body: 'form',
      doc: {
        summary: 'One-click unsubscribe from early warnings (RFC 8058)',
        description:
          'The List-Unsubscribe link of a warning email, POSTed with List-Unsubscribe=One-Click: turns off that user\'s ' +
          'warnings (their lead times become none); the expired notice stays as it was. The link is signed and dated.',
        success: { status: 200, description: 'Warnings are off (text/plain).' },
        errors: unsubscribeErrors,
      },
      async handle({ query }) {
        const userId = unsubscriber(query);
        const view = await deps.preferences.update({ id: userId }, { reminders: [] });
        return {
          status: 200,
          raw: {
            contentType: 'text/plain; charset=utf-8',
            text: `You will get no more early warnings about your ${deps.config.REGISTRY_NAME} API tokens. ` +
              `${view.plan.expiredNotice ? 'You will still be told when a token has expired. ' : ''}` +
              'Choose lead times in your reminder preferences to turn warnings back on.\n',
          },
          log: { userId },
        };
      },
    },
    {
      method: 'GET',
      path: '/unsubscribe',
      access: 'public',
      doc: {
        summary: 'The page an unsubscribe link opens in a browser',
        description: 'Changes nothing (link scanners follow links): a button that POSTs the same link.',
        success: { status: 200, description: 'A page with the button (text/html).' },
        errors: unsubscribeErrors,
      },
      async handle({ query }) {
        unsubscriber(query);
        const action = `/unsubscribe?${query.toString()}`.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
        return {
          status: 200,
          raw: {
            contentType: 'text/html; charset=utf-8',
            text:
              '<!doctype html><meta charset="utf-8"><title>Unsubscribe</title>' +
              `<form method="post" action="${action}"><input type="hidden" name="List-Unsubscribe" value="One-Click">` +
              '<p>Stop early warnings about expiring API tokens? The notice once a token has expired is not affected.</p>' +
              '<button type="submit">Stop warnings</button></form>\n',
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/calendar/:feed',
      access: 'public',
      doc: {
        summary: 'A user\'s calendar feed (text/calendar), at its secret link',
        description: 'No token: the link is the secret. Revoked and expired tokens are not in it.',
        success: { status: 200, description: 'The feed, text/calendar.' },
        errors: { 404: 'No feed has this link (never made, replaced, or turned off).' },
      },
      async handle({ params }) {
        const secret = (params.feed as string).replace(/\.ics$/, '');
        const feed = await deps.calendar.feed(secret);
        if (feed === null) throw new ApiError(404, 'no calendar feed at this link (it may have been replaced or turned off)');
        return { status: 200, raw: { contentType: 'text/calendar; charset=utf-8', text: feed } };
      },
    },
    userRoute({
      method: 'GET',
      path: '/api/v1/me/tokens/:id',
      doc: {
        summary: 'Show a token',
        success: { status: 200, description: 'The token (revoked ones too).', schema: tokenResponse },
        ...idParam,
      },
      async handle({ user, params }) {
        const token = await withTemporalDeadlineAndApiErrors(() => deps.tokens.get(params.id as string, user));
        return { status: 200, body: { api_token: presentToken(token) } };
      },
    }),
    userRoute({
      method: 'DELETE',
      path: '/api/v1/me/tokens/:id',
      doc: {
        summary: 'Revoke a token',
        description: 'Also cancels its reminders. Revoking a revoked token again is a harmless no-op.',
        success: { status: 204, description: 'Revoked.' },
        errors: { ...idParam.errors, 403: readOnly },
      },
      async handle({ user, params }) {
        const revoked = await withTemporalDeadlineAndApiErrors(() => deps.tokens.revoke(params.id as string, user));
        return {
          status: 204,
          log: { workflowCancelled: revoked.workflowCancelled, workflowWarning: revoked.workflowError !== undefined },
        };
      },
    }),
    userRoute({
      method: 'POST',
      path: '/api/v1/me/tokens/:id/duplicate',
      body: { schema: emptyRequest, optional: true },
      doc: {
        summary: 'Make a new token like this one ("Regenerate")',
        description: 'Same name and scopes, a fresh expiry of the same lifetime; the original is kept.',
        request: emptyRequest,
        success: { status: 200, description: 'The new token.', schema: createdTokenResponse },
        errors: { ...idParam.errors, 403: readOnly },
      },
      async handle({ user, params }) {
        const copy = await withTemporalDeadlineAndApiErrors(() => deps.tokens.duplicate(params.id as string, user));
        return {
          status: 200,
          body: presentCreated(copy, { id: Number(copy.from) }),
          log: { newTokenId: copy.token.id, workflowWarning: copy.workflowError !== undefined },
        };
      },
    }),
    userRoute({
      method: 'POST',
      path: '/api/v1/me/tokens/:id/rotate',
      body: { schema: emptyRequest, optional: true },
      doc: {
        summary: 'Replace a token',
        description: 'Duplicate, then revoke the original (in one transaction), cancelling its reminders.',
        request: emptyRequest,
        success: { status: 200, description: 'The new token; the original is revoked.', schema: createdTokenResponse },
        errors: { ...idParam.errors, 403: readOnly, 409: 'The token is revoked: duplicate it instead.' },
      },
      async handle({ user, params }) {
        const rotated = await withTemporalDeadlineAndApiErrors(() => deps.tokens.rotate(params.id as string, user));
        const from = { id: Number(rotated.from), revoked: true, expiry: presentExpiryStart(rotated.revoked) };
        return {
          status: 200,
          body: presentCreated(rotated, from),
          log: {
            newTokenId: rotated.token.id,
            workflowWarning: rotated.workflowError !== undefined || rotated.revoked.workflowError !== undefined,
          },
        };
      },
    }),
    userRoute({
      method: 'GET',
      path: '/api/v1/me/tokens/:id/expiry',
      doc: {
        summary: 'The token\'s expiry reminders',
        description: 'The workflow\'s state, its next reminder and when it is due, and the emails and webhook deliveries recorded so far.',
        success: { status: 200, description: 'The reminders.', schema: expiryResponse },
        errors: { ...idParam.errors, 503: 'Temporal did not answer.' },
      },
      async handle({ user, params }) {
        const id = params.id as string;
        await withTemporalDeadlineAndApiErrors(() => deps.tokens.get(id, user));
        try {
          const status = await withTemporalDeadlineAndApiErrors(() => deps.tokens.status(id, user), STATUS_DEADLINE_MS);
          return { status: 200, body: presentExpiry(status) };
        } catch (err) {
          if (err instanceof ApiError) throw err;
          throw new ApiError(503, `could not read the token's workflow from Temporal (${(err as Error).message}); try again`);
        }
      },
    }),
  ];
}
