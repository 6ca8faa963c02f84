// The shared harness for workflow tests: a fresh time-skipping server per test, task queues and workflow
// ids of the test's own, and a worker that runs the bundled workflows with the activities it is given.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { startTimeSkippingEnv, workflowBundle } from './temporal';

let serial = 0;

export class WorkflowHarness {
  private server: TestWorkflowEnvironment | undefined;

  /** Registers the hooks that start and stop a server around each test; call at the top of a test file. */
  static use(): WorkflowHarness {
    const harness = new WorkflowHarness();
    beforeEach(async () => {
      harness.server = await startTimeSkippingEnv();
    });
    afterEach(async () => {
      await harness.server?.teardown();
      harness.server = undefined;
    });
    return harness;
  }

  get env(): TestWorkflowEnvironment {
    if (!this.server) throw new Error('the test server runs only inside a test');
    return this.server;
  }

  /** A name no other test in this process uses: `<prefix>-<pid>-<n>`. */
  unique(prefix: string): string {
    return `${prefix}-${process.pid}-${++serial}`;
  }

  /** Runs a worker on `taskQueue` with these activities while `fn` runs. */
  async withWorker<T>(
    taskQueue: string,
    activities: object,
    fn: () => Promise<T>,
    options: Partial<WorkerOptions> = {},
  ): Promise<T> {
    const worker = await Worker.create({
      connection: this.env.nativeConnection,
      namespace: this.env.namespace ?? 'default',
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities,
      ...options,
    });
    return worker.runUntil(fn);
  }
}
