// Saved histories of the released workflow shape, replayed by test/replay.test.ts: a test that reaches a path
// checks that its run replays, and with UPDATE_HISTORIES=1 saves it under test/histories/<name>.json.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from './temporal';

export async function replaysAndSave(handle: WorkflowHandle, name: string): Promise<void> {
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, name);
  if (process.env.UPDATE_HISTORIES) {
    writeFileSync(path.join(__dirname, '..', 'histories', `${name}.json`), JSON.stringify(history));
  }
}
