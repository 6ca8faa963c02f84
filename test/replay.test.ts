import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from './helpers/temporal';

// Histories recorded from real runs. A change to workflow code that would break a running workflow
// fails here: from 1.0 on, guard it with patched('...') and keep the released shape's histories. Tests save
// them (test/helpers/histories.ts): UPDATE_HISTORIES=1 ./scripts/test <the test that reaches the path>.
const dir = path.join(__dirname, 'histories');
const histories = readdirSync(dir).filter((file) => file.endsWith('.json'));

test('there are saved histories to replay', () => {
  expect(histories.length).toBeGreaterThanOrEqual(2);
});

test.each(histories)('%s replays without nondeterminism', async (file) => {
  // Saved as client.workflow.getHandle(id).fetchHistory() serialises with JSON.stringify.
  const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
});
