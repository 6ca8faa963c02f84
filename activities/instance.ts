// Defence in depth for several instances in one namespace: an activity handed another instance's input (a worker
// on the wrong task queue) refuses it, loudly and for good, instead of looking the token up in its own database.
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { WRONG_INSTANCE } from '../src/tokenExpiry/contract';

// `never`: any one-argument activity; its input is checked for `instance` when it runs.
type InstanceActivity = (input: never) => Promise<unknown>;

/** `activities` with each one checking first that its input's instance is `instance`, this worker's database's. */
export function refuseOtherInstances<A extends Record<string, InstanceActivity>>(instance: string, activities: A): A {
  const guarded = Object.entries(activities).map(([name, activity]) => [
    name,
    async (input: { instance?: unknown } | undefined) => {
      if (input?.instance !== instance) {
        const { workflowExecution, taskQueue } = Context.current().info;
        const workflowId = workflowExecution?.workflowId;
        const message =
          `${name} for instance ${JSON.stringify(input?.instance)} reached a worker of instance "${instance}" ` +
          `(task queue ${taskQueue}): each instance needs workers of its own, on its own task queue`;
        log.error('activity refused: another instance', { workflowId, activity: name, instance: input?.instance });
        throw ApplicationFailure.nonRetryable(message, WRONG_INSTANCE);
      }
      return activity(input as never);
    },
  ]);
  return Object.fromEntries(guarded) as A;
}
