import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { addSearchAttributesRequest } from '../../src/temporal/connection';

function testServerPath(): string {
  return (
    process.env.TEMPORAL_TEST_SERVER_PATH ??
    path.resolve(__dirname, '../../.tools/python/bin/temporal-test-server')
  );
}

/** The time-skipping test server, from the pinned binary, with our search attributes registered. */
export async function startTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServerPath() } },
  });
  // The test server has no listSearchAttributes, so ensureSearchAttributes cannot run here: register them all.
  await env.connection.operatorService.addSearchAttributes(addSearchAttributesRequest(env.namespace ?? 'default'));
  return env;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundled once per test file: webpack takes seconds. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietLogger });
  return bundle;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};
