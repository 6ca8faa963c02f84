// The Temporal Schedule that runs the sweep every SWEEP_INTERVAL; made or brought up to date at worker start.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import { instanceOf, taskQueueOf, type Config } from '../config';
import { parseDuration } from '../duration';
import { sweepScheduleId, type SweepInput } from './contract';
import type { tokenExpirySweepWorkflow } from '../../workflows/sweep';

export type SweepScheduleConfig = Pick<
  Config,
  'SWEEP_INTERVAL' | 'TEMPORAL_TASK_QUEUE' | 'TOKEN_EXPIRY_INSTANCE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'
>;

type SweepAction = ScheduleOptionsStartWorkflowAction<typeof tokenExpirySweepWorkflow>;

export function sweepIntervalMs(config: Pick<Config, 'SWEEP_INTERVAL'>): number {
  const ms = parseDuration(config.SWEEP_INTERVAL);
  // loadConfig has already checked it; this is for a Config built by hand.
  if (ms === null) throw new Error(`SWEEP_INTERVAL: "${config.SWEEP_INTERVAL}" is not a duration`);
  return ms;
}

/**
 * How far ahead a scheduled sweep looks for stopped workflows: the earliest reminder plus two intervals,
 * so that every token is checked by at least two sweeps before its first reminder falls due, and
 * a daily sweep describes only the few percent of tokens that expire soon, not all of them.
 */
export function recheckHorizonMs(config: SweepScheduleConfig): number {
  const earliest = Math.max(0, ...config.EXPIRY_REMINDERS.map((r) => r.beforeExpiryMs));
  return earliest + 2 * sweepIntervalMs(config);
}

export function sweepScheduleOptions(config: SweepScheduleConfig): ScheduleOptions<SweepAction> {
  const every = sweepIntervalMs(config);
  const input: SweepInput = { recheckWithinMs: recheckHorizonMs(config) };
  const scheduleId = sweepScheduleId(instanceOf(config));
  return {
    scheduleId,
    spec: { intervals: [{ every }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'tokenExpirySweepWorkflow',
      workflowId: scheduleId,
      taskQueue: taskQueueOf(config),
      args: [input],
    },
    policies: {
      // A sweep still running when the next is due is enough: never two at once.
      overlap: ScheduleOverlapPolicy.SKIP,
      // After a Temporal outage, one missed sweep is caught up, not one per missed interval.
      catchupWindow: every,
    },
  };
}

/**
 * Creates the sweep's schedule, or brings an existing one up to date with this config (interval, task
 * queue, horizon). Safe for every worker to call at start, at the same time.
 */
export async function ensureSweepSchedule(client: Client, config: SweepScheduleConfig): Promise<'created' | 'updated'> {
  const options = sweepScheduleOptions(config);
  try {
    // A new deployment sweeps at once: tokens from before the system existed get their reminders today.
    await client.schedule.create({ ...options, state: { triggerImmediately: true } });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(options.scheduleId).update<typeof tokenExpirySweepWorkflow>((previous) => ({
    ...previous,
    spec: options.spec,
    action: options.action,
    policies: { ...previous.policies, ...options.policies },
  }));
  return 'updated';
}
