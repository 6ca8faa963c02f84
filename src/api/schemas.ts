// The API's wire shapes, in crates.io's snake_case. Requests are parsed with these (types and formats; the
// token service checks the rules); the OpenAPI document is generated from them; the presenters are typed by them.
import { z } from 'zod';
import { WEBHOOK_DELIVERY_STATUSES } from '../db/webhooks';
import {
  DIGEST_TIMINGS,
  NOTIFICATION_STATUSES,
  REMINDER_KINDS,
  REMINDER_OUTCOMES,
  TOKEN_EXPIRY_STATES,
} from '../tokenExpiry/contract';
import { ENDPOINT_SCOPES } from '../tokens/input';
import { WEEKDAYS } from '../tokenExpiry/wakingHours';

/** Schemas that become named components of the OpenAPI document, split by which side of the wire. */
export const requestSchemas = z.registry<{ id: string }>();
export const responseSchemas = z.registry<{ id: string }>();

const RFC3339 = 'an RFC 3339 time with a zone, e.g. 2027-01-31T12:00:00Z';
const timestamp = z.iso.datetime({ offset: true, error: `must be ${RFC3339}` });
const tokenId = z.int().positive().describe('The token id.');

const newApiToken = z
  .strictObject({
    name: z.string().describe('Shown to the user, and in the reminder emails. 1-200 characters, no control characters.'),
    crate_scopes: z
      .array(z.string())
      .nullable()
      .optional()
      .describe('Up to 100 crate names, or prefixes ending in *; null or absent: every crate.'),
    endpoint_scopes: z
      // Checked by the token service with the other rules; the enum is for the OpenAPI document.
      .array(z.string().meta({ enum: [...ENDPOINT_SCOPES] }))
      .nullable()
      .optional()
      .describe('What the token may do; null or absent: everything.'),
    expired_at: timestamp
      .nullable()
      .optional()
      .describe(`When the token stops working: ${RFC3339}, in the future and within 10 years. Null or absent: never (and no reminders).`),
  })
  .describe('The properties of a new token.')
  .register(requestSchemas, { id: 'NewApiToken' });

export const createTokenRequest = z
  .strictObject({ api_token: newApiToken })
  .describe('PUT /api/v1/me/tokens')
  .register(requestSchemas, { id: 'NewApiTokenRequest' });

/** duplicate and rotate take no parameters: no body, or an empty object. */
export const emptyRequest = z.strictObject({}).describe('No parameters.').register(requestSchemas, { id: 'EmptyRequest' });

export const forecastQuery = z.object({
  days: z
    .string()
    .regex(/^\d{1,3}$/, 'must be a whole number of days (1-366)')
    .transform(Number)
    .refine((days) => days >= 1 && days <= 366, 'must be a whole number of days (1-366)')
    .optional(),
});

export const forecastResponse = z
  .array(
    z.object({
      date: z.string().describe('UTC day, YYYY-MM-DD'),
      warnings: z.number().int(),
      expired: z.number().int(),
      emails: z.number().int().describe('the emails these reminders make'),
    }),
  )
  .register(responseSchemas, { id: 'ExpiryForecast' });

export const listQuery = z.object({
  expired_days: z
    .string()
    .regex(/^\d{1,5}$/, 'must be a whole number of days (0-99999)')
    .transform(Number)
    .optional(),
});

const apiToken = z
  .object({
    id: tokenId,
    name: z.string(),
    created_at: timestamp,
    last_used_at: timestamp.nullable(),
    expired_at: timestamp.nullable(),
    crate_scopes: z.array(z.string()).nullable(),
    endpoint_scopes: z.array(z.enum(ENDPOINT_SCOPES)).nullable(),
    revoked: z.boolean().describe('Not in crates.io\'s shape: revoked tokens are still shown by id.'),
  })
  .describe('A token, without its secret.')
  .register(responseSchemas, { id: 'ApiToken' });

const apiTokenWithSecret = apiToken
  .extend({ token: z.string().describe('The secret. Returned once, here; only its SHA-256 is stored.') })
  .describe('A new token and its secret.')
  .register(responseSchemas, { id: 'ApiTokenWithSecret' });

const expiryStart = z
  .object({
    workflow_id: z.string().nullable().describe('The Temporal workflow sending the reminders; null when the token never expires.'),
    warning: z
      .string()
      .optional()
      .describe('Set when the workflow could not be started or cancelled now; the sweep finishes the job later.'),
  })
  .describe('What happened to the expiry reminders.')
  .register(responseSchemas, { id: 'ExpiryWorkflow' });

export const createdTokenResponse = z
  .object({
    api_token: apiTokenWithSecret,
    expiry: expiryStart,
    from: z
      .object({
        id: tokenId,
        revoked: z.boolean().optional().describe('rotate: the original token is now revoked.'),
        expiry: expiryStart.optional().describe('rotate: what happened to the original token\'s reminders.'),
      })
      .optional()
      .describe('duplicate and rotate: the token this one was made from.'),
  })
  .describe('A created token.')
  .register(responseSchemas, { id: 'CreatedApiToken' });

export const expiryRefreshResponse = z
  .object({ api_token: apiToken, expiry: expiryStart })
  .describe('The token as the registry\'s database has it, and what happened to its reminders.')
  .register(responseSchemas, { id: 'ExpiryRefresh' });

export const tokenListResponse = z
  .object({ api_tokens: z.array(apiToken) })
  .describe('The user\'s tokens that are not revoked, newest first.')
  .register(responseSchemas, { id: 'ApiTokenList' });

export const tokenResponse = z.object({ api_token: apiToken }).register(responseSchemas, { id: 'ApiTokenResponse' });

const reminderStatus = z.object({
  key: z.string().describe('e.g. 7d, 1d, expired'),
  kind: z.enum(REMINDER_KINDS),
  due_at: timestamp,
  outcome: z.enum(REMINDER_OUTCOMES).optional(),
  reason: z.string().optional(),
  message_id: z.string().optional(),
  digest: z.string().optional().describe('The email\'s dedupe key, the same for every token one digest covered.'),
  sent_by_token_id: z.string().optional().describe('The token whose workflow sent that email.'),
  at: timestamp.optional(),
});

const workflowStatus = z
  .object({
    workflow_id: z.string(),
    execution: z.string().describe('Temporal\'s status: RUNNING, COMPLETED, CANCELLED, TERMINATED, ..., or NOT_FOUND.'),
    state: z
      .enum(TOKEN_EXPIRY_STATES)
      .nullable()
      .describe('The workflow\'s own view; null when it could not be asked (no worker running, or it has closed).'),
    next_reminder: z.string().nullable(),
    next_due_at: timestamp.nullable(),
    reminders: z.array(reminderStatus),
  })
  .describe('The token\'s expiry workflow, as Temporal and the workflow see it.')
  .register(responseSchemas, { id: 'ExpiryWorkflowStatus' });

const notification = z
  .object({
    reminder: z.string(),
    due_at: timestamp,
    status: z.enum(NOTIFICATION_STATUSES),
    reason: z.string().nullable(),
    provider_message_id: z.string().nullable(),
    submitted_at: timestamp.nullable(),
    attempts: z.int().nonnegative(),
    last_error: z.string().nullable(),
    digest: z.string().describe('The email\'s dedupe key, the same for every token one digest covered.'),
    sent_by_token_id: z.string().nullable().describe('The token whose workflow claimed and sent it.'),
    timing: z.enum(DIGEST_TIMINGS).nullable().describe('Why it went when it did; null before digests.'),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .describe('One reminder email as recorded in the database.')
  .register(responseSchemas, { id: 'ExpiryNotification' });

const webhookDelivery = z
  .object({
    reminder: z.string(),
    webhook_id: z.string().describe('The webhook-id header every attempt of this notification carried.'),
    status: z.enum(WEBHOOK_DELIVERY_STATUSES).describe('sending while it is retried; failed: refused for good (a 4xx, an address refused).'),
    reason: z.string().nullable(),
    attempts: z.int().nonnegative(),
    last_error: z.string().nullable(),
    response_status: z.int().nullable().describe("The receiver's last HTTP status; null when it never answered."),
    delivered_at: timestamp.nullable(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .describe("One reminder posted to the owner's webhook (docs/webhooks.md).")
  .register(responseSchemas, { id: 'WebhookDelivery' });

export const expiryResponse = z
  .object({
    api_token: apiToken,
    workflow: workflowStatus.nullable().describe('Null when the token never expires.'),
    notifications: z.array(notification),
    webhook_deliveries: z.array(webhookDelivery),
  })
  .describe('The expiry reminders of one token.')
  .register(responseSchemas, { id: 'ExpiryStatus' });

const weekday = z.string().meta({ enum: [...WEEKDAYS] });

const preferenceChange = z
  .strictObject({
    reminders: z
      .array(z.string())
      .max(50)
      .nullable()
      .optional()
      .describe('Lead times from the menu (EXPIRY_REMINDER_MENU), e.g. ["3d", "12h"]; [] for no warnings; null: the operator\'s.'),
    expired_notice: z.boolean().nullable().optional().describe('The notice once a token has expired; null: the operator\'s.'),
    time_zone: z.string().max(100).nullable().optional().describe('An IANA time zone, e.g. Europe/Berlin; null: none (any hour, in UTC).'),
    waking_hours: z
      .string()
      .max(20)
      .nullable()
      .optional()
      .describe('When reminders may arrive, local time, e.g. 09:00-18:00 (start before end); null: all day. Needs time_zone.'),
    working_days: z
      .array(weekday)
      .max(7)
      .nullable()
      .optional()
      .describe('The days reminders may arrive, e.g. ["mon", "tue", "wed", "thu", "fri"]; null: every day. Needs time_zone.'),
  })
  .describe('A change: absent fields stay as they are, null goes back to the operator\'s setting.')
  .register(requestSchemas, { id: 'ExpiryPreferenceChange' });

export const preferenceRequest = z
  .strictObject({ preferences: preferenceChange })
  .describe('PUT /api/v1/me/expiry/preferences')
  .register(requestSchemas, { id: 'ExpiryPreferenceRequest' });

const chosenPreferences = z.object({
  reminders: z.array(z.string()).nullable(),
  expired_notice: z.boolean().nullable(),
  time_zone: z.string().nullable(),
  waking_hours: z.string().nullable(),
  working_days: z.array(z.enum(WEEKDAYS)).nullable(),
});

export const preferencesResponse = z
  .object({
    preferences: chosenPreferences.describe('What the user chose; null: the operator\'s setting.'),
    effective: z
      .object({
        reminders: z.array(z.string()),
        expired_notice: z.boolean(),
        time_zone: z.string().nullable(),
        waking_hours: z.string().nullable(),
        working_days: z.array(z.enum(WEEKDAYS)).nullable(),
      })
      .describe('The plan the user\'s tokens get. time_zone null: reminders at any hour, as without preferences.'),
    menu: z.array(z.string()).describe('The lead times the user may choose from.'),
    replan: z
      .object({
        matched: z.int().nonnegative().describe('The user\'s tokens whose workflow may be waiting.'),
        replanned: z.int().nonnegative(),
        unchanged: z.int().nonnegative(),
        gone: z.int().nonnegative().describe('Closed already (revoked, completed).'),
        failed: z.int().nonnegative().describe('Not replanned now; `token-expiry replan` finishes the job.'),
        failures: z.array(z.string()).optional().describe('The first errors, when some failed.'),
      })
      .optional()
      .describe('After a change: what happened to the user\'s waiting workflows.'),
  })
  .describe('A user\'s reminder preferences.')
  .register(responseSchemas, { id: 'ExpiryPreferences' });

export const calendarLinkResponse = z
  .object({
    calendar: z.object({
      url: z.string().describe('The secret link to subscribe to (text/calendar). Shown once; a new link replaces it.'),
    }),
  })
  .describe('A user\'s calendar feed link.')
  .register(responseSchemas, { id: 'CalendarLink' });

export const webhookRequest = z
  .strictObject({
    webhook: z.strictObject({
      url: z.string().describe('Where reminders are posted: https, on a host that resolves outside loopback, private and link-local ranges.'),
      channels: z
        .array(z.string())
        .nullable()
        .optional()
        .describe('email and webhook (the default), or webhook alone; absent or null keeps what was chosen.'),
    }),
  })
  .describe('PUT /api/v1/me/expiry/webhook')
  .register(requestSchemas, { id: 'WebhookRequest' });

export const webhookResponse = z
  .object({
    webhook: z.object({
      url: z.string(),
      channels: z.array(z.enum(['email', 'webhook'])).describe('Where each reminder goes while the webhook is set.'),
      created_at: z.string().describe('ISO 8601.'),
      rotated_at: z.string().describe('When the secret was made or last rotated (ISO 8601).'),
      secret: z
        .string()
        .optional()
        .describe('The signing secret (whsec_...), Standard Webhooks format: only in the answer that made or rotated it.'),
    }),
  })
  .describe("A user's webhook (docs/webhooks.md).")
  .register(responseSchemas, { id: 'Webhook' });

export const errorResponse = z
  .object({ errors: z.array(z.object({ detail: z.string() })).min(1) })
  .describe('Every error, as crates.io reports them.')
  .register(responseSchemas, { id: 'Errors' });

const HEALTH_STATES = ['ok', 'unavailable'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

export const healthResponse = z
  .object({
    database: z.enum(HEALTH_STATES).describe('ok, or unavailable (the reason is in the API\'s log, not here)'),
    temporal: z.enum(HEALTH_STATES).describe('ok, or unavailable (the reason is in the API\'s log, not here)'),
    errors: z.array(z.object({ detail: z.string() })).optional(),
  })
  .describe('The API\'s connections.')
  .register(responseSchemas, { id: 'Health' });

export type ApiTokenJson = z.output<typeof apiToken>;
export type CreatedTokenJson = z.output<typeof createdTokenResponse>;
export type ExpiryStartJson = z.output<typeof expiryStart>;
export type ExpiryJson = z.output<typeof expiryResponse>;
export type PreferencesJson = z.output<typeof preferencesResponse>;
export type HealthJson = z.output<typeof healthResponse>;
