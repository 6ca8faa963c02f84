// Turns the token service's results into the API's wire shapes (src/api/schemas.ts).
import type { NotificationRow } from '../db/notifications';
import type { WebhookDeliveryRow } from '../db/webhooks';
import type { TokenRow } from '../registry/adapter';
import type { WorkflowView } from '../tokenExpiry/client';
import type { CreatedToken, ExpiryWorkflowResult } from '../tokens/service';
import { formatWakingHours } from '../preferences/rules';
import type { PreferencesView } from '../preferences/service';
import type { ApiTokenJson, CreatedTokenJson, ExpiryJson, ExpiryStartJson, PreferencesJson } from './schemas';

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

export function presentToken(token: TokenRow): ApiTokenJson {
  return {
    id: Number(token.id),
    name: token.name,
    created_at: token.createdAt.toISOString(),
    last_used_at: iso(token.lastUsedAt),
    expired_at: iso(token.expiredAt),
    crate_scopes: token.crateScopes,
    endpoint_scopes: token.endpointScopes as ApiTokenJson['endpoint_scopes'],
    revoked: token.revoked,
  };
}

export function presentExpiryStart(result: ExpiryWorkflowResult): ExpiryStartJson {
  return {
    workflow_id: result.workflowId,
    ...(result.workflowError ? { warning: result.workflowError } : {}),
  };
}

/** The secret is shown once, here, and never stored. */
export function presentCreated(created: CreatedToken, from?: CreatedTokenJson['from']): CreatedTokenJson {
  return {
    api_token: { ...presentToken(created.token), token: created.secret },
    expiry: presentExpiryStart(created),
    ...(from ? { from } : {}),
  };
}

function presentWorkflow(view: WorkflowView): NonNullable<ExpiryJson['workflow']> {
  const status = view.status;
  return {
    workflow_id: view.workflowId,
    execution: view.execution,
    state: status?.state ?? null,
    next_reminder: status?.nextReminder ?? null,
    next_due_at: status?.nextDueAt ?? null,
    reminders: (status?.reminders ?? []).map((reminder) => ({
      key: reminder.key,
      kind: reminder.kind,
      due_at: reminder.dueAt,
      ...(reminder.outcome ? { outcome: reminder.outcome } : {}),
      ...(reminder.reason ? { reason: reminder.reason } : {}),
      ...(reminder.messageId ? { message_id: reminder.messageId } : {}),
      ...(reminder.digest ? { digest: reminder.digest } : {}),
      ...(reminder.sentByTokenId ? { sent_by_token_id: reminder.sentByTokenId } : {}),
      ...(reminder.at ? { at: reminder.at } : {}),
    })),
  };
}

function presentNotification(row: NotificationRow): ExpiryJson['notifications'][number] {
  return {
    reminder: row.reminder,
    due_at: row.dueAt.toISOString(),
    status: row.status,
    reason: row.reason,
    provider_message_id: row.providerMessageId,
    submitted_at: iso(row.submittedAt),
    attempts: row.attempts,
    last_error: row.lastError,
    digest: row.digest,
    sent_by_token_id: row.sentByTokenId,
    timing: row.timing,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

function presentWebhookDelivery(row: WebhookDeliveryRow): ExpiryJson['webhook_deliveries'][number] {
  return {
    reminder: row.reminder,
    webhook_id: row.webhookId,
    status: row.status,
    reason: row.reason,
    attempts: row.attempts,
    last_error: row.lastError,
    response_status: row.responseStatus,
    delivered_at: iso(row.deliveredAt),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function presentExpiry(status: {
  token: TokenRow;
  workflow: WorkflowView | null;
  notifications: NotificationRow[];
  webhookDeliveries: WebhookDeliveryRow[];
}): ExpiryJson {
  return {
    api_token: presentToken(status.token),
    workflow: status.workflow ? presentWorkflow(status.workflow) : null,
    notifications: status.notifications.map(presentNotification),
    webhook_deliveries: status.webhookDeliveries.map(presentWebhookDelivery),
  };
}

export function presentPreferences({ chosen, plan, menu, replan }: PreferencesView): PreferencesJson {
  const hours = plan.wakingHours;
  return {
    preferences: {
      reminders: chosen.reminders,
      expired_notice: chosen.expiredNotice,
      time_zone: chosen.timeZone,
      waking_hours: chosen.wakingHours ? formatWakingHours(chosen.wakingHours) : null,
      working_days: chosen.workingDays,
    },
    effective: {
      reminders: plan.reminders.map((r) => r.key),
      expired_notice: plan.expiredNotice,
      time_zone: hours?.timeZone ?? null,
      waking_hours: hours ? formatWakingHours(hours) : null,
      working_days: hours ? [...hours.days] : null,
    },
    menu,
    ...(replan
      ? {
          replan: {
            matched: replan.matched,
            replanned: replan.replanned,
            unchanged: replan.unchanged,
            gone: replan.gone,
            failed: replan.failed,
            ...(replan.failures.length > 0 ? { failures: replan.failures.map((f) => f.error) } : {}),
          },
        }
      : {}),
  };
}
