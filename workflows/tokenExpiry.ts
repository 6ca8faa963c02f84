import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  TemporalFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/tokenExpiry';
import {
  DROPPED_FROM_PLAN,
  replanUpdate,
  searchAttributes,
  statusQuery,
  type DeliverResult,
  type ReminderStatus,
  type ReplanInput,
  type ReplanRefusal,
  type ReplanResult,
  type SendReminderInput,
  type SentElsewhere,
  type TokenExpiryInput,
  type TokenExpiryState,
  type TokenExpiryStatus,
  type UnrecordedSend,
} from '../src/tokenExpiry/contract';
import { SEND_ACTIVITY_TIMEOUT_MS } from '../src/tokenExpiry/lease';
import { CREATED_INSIDE_WINDOW, insideWindow, invalidPlan, planReminders, replanReminders } from '../src/tokenExpiry/plan';
import { dueTimerSummary, recordSummary, reminderLabel, retryPauseSummary, sendSummary } from '../src/tokenExpiry/summaries';

type Activities = ReturnType<typeof createActivities>;

// The pause before a failed send is tried again.
const SEND_RETRY_INTERVAL = '10 seconds';

const { sendReminder } = proxyActivities<Activities>({
  // One Postmark call (bounded to end before the claim's lease does) and a few short queries; the claim's
  // lease is sized from this in src/tokenExpiry/lease.ts.
  startToCloseTimeout: SEND_ACTIVITY_TIMEOUT_MS,
  // 10 s, 20 s, 40 s ... capped at 10 min: 20 attempts ride out about 2.5 hours of Postmark or
  // database trouble, then the reminder is recorded as failed and the next one still gets its turn.
  // Permanent rejections (401, 422) are non-retryable and stop at the first attempt.
  retry: { initialInterval: SEND_RETRY_INTERVAL, backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 20 },
});

// The first attempt runs in the worker within the workflow task: no activity task for the server to
// dispatch and record, which cuts its work per send by a third. Anything short of a definite outcome
// goes on to sendReminder above, whose retries and last failure ops see in the UI.
const { sendReminderFirstTry } = proxyLocalActivities<Activities>({
  startToCloseTimeout: SEND_ACTIVITY_TIMEOUT_MS,
  retry: { maximumAttempts: 1 },
});

const { recordOutcomes } = proxyActivities<Activities>({
  // A single insert; retried for as long as the database is away, since it only writes the audit trail.
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

const { recordSent } = proxyActivities<Activities>({
  // An email Postmark accepted is recorded as sent, never as anything else: retried for as long as the
  // database is away, with no resend and no failure in between.
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/** Sleeps until each reminder of one token falls due and sends it; cancelled when the token is revoked. */
export async function tokenExpiryWorkflow(input: TokenExpiryInput): Promise<TokenExpiryStatus> {
  const status: TokenExpiryStatus = {
    tokenId: input.tokenId,
    expiresAt: input.expiresAt,
    state: 'waiting',
    nextReminder: null,
    nextDueAt: null,
    reminders: planReminders(input),
  };
  setHandler(statusQuery, () => status);
  // Bumped by each accepted replan: it wakes the wait for the next reminder.
  let planVersion = 0;
  // The reminder being sent (with its retries or digest wait): a replan keeps it as it is.
  let inFlight: ReminderStatus | undefined;

  const setState = (state: TokenExpiryState, next: ReminderStatus | undefined, visible = true): void => {
    status.state = state;
    status.nextReminder = next?.key ?? null;
    status.nextDueAt = next?.dueAt ?? null;
    if (visible) publishState();
  };
  const publishState = (): void => {
    upsertSearchAttributes([
      { key: searchAttributes.state, value: status.state },
      { key: searchAttributes.nextReminderAt, value: status.nextDueAt ? new Date(status.nextDueAt) : null },
    ]);
  };

  const settle = async (reminders: ReminderStatus[], reason: string): Promise<void> => {
    if (reminders.length === 0) return;
    const at = new Date().toISOString();
    for (const reminder of reminders) Object.assign(reminder, { outcome: 'skipped', reason, at });
    const sentElsewhere = await recordOutcomes.executeWithOptions({ summary: recordSummary(reminders.map(reminderLabel), reason) }, [
      {
        instance: input.instance,
        tokenId: input.tokenId,
        outcomes: reminders.map(({ key, dueAt }) => ({ reminder: key, dueAt, status: 'skipped' as const, reason })),
      },
    ]);
    takeSentElsewhere(reminders, sentElsewhere);
  };

  const replanChange = (plan: ReplanInput) =>
    replanReminders(
      status.reminders,
      planReminders({ ...input, ...plan, expiresAt: plan.expiresAt ?? status.expiresAt, wakingDueAt: plan.wakingDueAt }),
      (r) => r.outcome !== undefined || r === inFlight,
    );
  setHandler(
    replanUpdate,
    async (plan): Promise<ReplanResult> => {
      const { reminders, added, dropped, moved } = replanChange(plan);
      const expiresAt = plan.expiresAt ?? status.expiresAt;
      status.reminders = reminders;
      if (expiresAt !== status.expiresAt) {
        status.expiresAt = expiresAt;
        upsertSearchAttributes([{ key: searchAttributes.expiresAt, value: new Date(expiresAt) }]);
      }
      planVersion++;
      // Both marked at once, before the main loop wakes: neither may be taken for a late reminder to send.
      await Promise.all([
        settle(dropped, DROPPED_FROM_PLAN),
        settle(insideWindow(reminders.filter((r) => r.outcome === undefined && r !== inFlight), input.createdAt), CREATED_INSIDE_WINDOW),
      ]);
      return { added: added.map((r) => r.key), dropped: dropped.map((r) => r.key), moved: moved.map((r) => r.key), expiresAt };
    },
    {
      // A refused update writes nothing to the history: a second replan with the same plan stores nothing.
      validator: (plan) => {
        const invalid = invalidPlan(plan, input.createdAt);
        if (invalid) throw refusal('InvalidPlan', invalid);
        const { added, dropped, moved } = replanChange(plan);
        if (added.length + dropped.length + moved.length === 0 && (plan.expiresAt ?? status.expiresAt) === status.expiresAt) {
          throw refusal('PlanUnchanged', 'the run has this plan already');
        }
      },
    },
  );

  try {
    await settle(insideWindow(status.reminders, input.createdAt), CREATED_INSIDE_WINDOW);

    for (;;) {
      const pending = status.reminders.filter((r) => r.outcome === undefined);
      const next = pending[0];
      if (!next) break;
      const now = Date.now();
      const waitMs = Date.parse(next.dueAt) - now;
      if (waitMs > 0) {
        setState('waiting', next);
        // A replan wakes the wait (cancelling its timer).
        const version = planVersion;
        await condition(() => planVersion !== version, waitMs, { summary: dueTimerSummary(next) });
        continue;
      }
      // Late (a backfill, an outage): of the reminders already due, only the tightest still says something true.
      const due = pending.filter((r) => Date.parse(r.dueAt) <= now);
      const tightest = due[due.length - 1] as ReminderStatus;
      inFlight = tightest;
      await settle(due.slice(0, -1), `superseded-by-${tightest.key}`);
      // A send that succeeds at its first try (the common case) is over within this workflow task: ops see
      // "sending" only once it needs retries, one visibility update per reminder instead of two.
      setState('sending', tightest, false);
      // An "expired" notice waiting for a digest shows the wait's end as its due time.
      // The expiry as it is now: a replan may have changed it since the start.
      await send({ ...input, expiresAt: status.expiresAt }, tightest, publishState, (until) =>
        setState(until ? 'waiting' : 'sending', { ...tightest, dueAt: until ?? tightest.dueAt }),
      );
      inFlight = undefined;
    }
    // A replan that dropped the last reminder is still recording it.
    await condition(allHandlersFinished);
    setState('completed', undefined);
    return status;
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => setState('cancelled', undefined));
    }
    throw err;
  }
}

/** `onRetries`: the send goes on to retries; `onWait`: an "expired" notice waits for a digest (null: the wait is over). */
async function send(
  input: TokenExpiryInput,
  reminder: ReminderStatus,
  onRetries: () => void,
  onWait: (until: string | null) => void,
): Promise<void> {
  try {
    const args: SendReminderInput = {
      instance: input.instance,
      tokenId: input.tokenId,
      reminder: reminder.key,
      kind: reminder.kind,
      dueAt: reminder.dueAt,
      expiresAt: input.expiresAt,
    };
    let result = await deliver(args, onRetries);
    while ('waitUntil' in result) {
      // Digests: an "expired" notice waits, at most EXPIRY_DIGEST_WINDOW, for the user's tokens expiring just
      // after it (docs/design.md, Digests), then sends.
      onWait(result.waitUntil);
      const waitMs = Date.parse(result.waitUntil) - Date.now();
      if (waitMs > 0) await sleep(waitMs, { summary: `expired notice waits for a digest, until ${result.waitUntil}` });
      onWait(null);
      result = await deliver({ ...args, waited: true }, onRetries);
    }
    Object.assign(reminder, result, { at: new Date().toISOString() });
  } catch (err) {
    if (isCancellation(err) || !(err instanceof TemporalFailure)) throw err;
    const cause = applicationFailure(err);
    // Rejected for good, or still failing after every retry: record it and go on to the next reminder.
    const type = cause?.type ?? 'SendFailed';
    const reason = `${type}: ${cause?.message ?? err.message}`;
    Object.assign(reminder, { outcome: 'failed', reason, at: new Date().toISOString() });
    upsertSearchAttributes([{ key: searchAttributes.lastFailure, value: type }]);
    if (!cause?.nonRetryable) {
      // The activity records permanent failures itself, the moment they happen; retries that ran out are recorded here.
      const sentElsewhere = await recordOutcomes.executeWithOptions({ summary: recordSummary([reminderLabel(reminder)], reason) }, [
        {
          instance: input.instance,
          tokenId: input.tokenId,
          outcomes: [{ reminder: reminder.key, dueAt: reminder.dueAt, status: 'failed', reason }],
        },
      ]);
      takeSentElsewhere([reminder], sentElsewhere);
    }
  }
}

/** Reminders the log had as sent already (another token's digest covered them) are sent, whatever the run decided. */
function takeSentElsewhere(reminders: ReminderStatus[], sent: SentElsewhere[]): void {
  for (const { reminder: key, ...result } of sent) {
    const reminder = reminders.find((r) => r.key === key);
    if (!reminder) continue;
    delete reminder.reason;
    Object.assign(reminder, result);
  }
}

/** `onRetries` runs before the send goes on to the queued activity, whose retries may take hours. */
async function deliver(args: SendReminderInput, onRetries: () => void): Promise<DeliverResult> {
  try {
    return await attemptDelivery(args, onRetries);
  } catch (err) {
    const cause = applicationFailure(err);
    if (isCancellation(err) || cause?.type !== 'SentNotRecorded') throw err;
    // Postmark accepted it and the database did not answer: record it, and nothing else, until it does.
    return recordSent.executeWithOptions({ summary: `record ${reminderLabel({ key: args.reminder, kind: args.kind })} as sent` }, [
      cause.details?.[0] as UnrecordedSend,
    ]);
  }
}

async function attemptDelivery(args: SendReminderInput, onRetries: () => void): Promise<DeliverResult> {
  const reminder = { key: args.reminder, kind: args.kind, dueAt: args.dueAt };
  const summary = sendSummary(reminder);
  try {
    const result = await sendReminderFirstTry.executeWithOptions({ summary }, [args]);
    if (result) return result;
    onRetries();
  } catch (err) {
    if (isCancellation(err) || applicationFailure(err)?.nonRetryable) throw err;
    onRetries();
    // Paced like a retry, so a struggling Postmark is not asked twice at once.
    await sleep(SEND_RETRY_INTERVAL, { summary: retryPauseSummary(reminder) });
  }
  return sendReminder.executeWithOptions({ summary }, [args]);
}

/** What an activity threw: a local activity's failure arrives as is, a queued one's as the cause. */
function applicationFailure(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure) return err;
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
}

function refusal(type: ReplanRefusal, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}
