// The worker as production runs it, `node dist/src/programs/cli.js worker`, in a child process of its own so
// that its memory can be read from /proc; ready once it polls both task types and the first sweep is over.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { sweepScheduleId } from '../../src/sweep/contract';
import { instanceTaskQueue } from '../../src/tokenExpiry/contract';
import { memoryOf, type Memory } from './proc';

export interface WorkerProcess {
  pid: number;
  logPath: string;
  memory(): Memory | null;
  /** The end of its log, for error messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export interface WorkerSettings {
  client: Client;
  temporalAddress: string;
  /** TEMPORAL_TASK_QUEUE: the worker polls it with the database's instance appended. */
  taskQueue: string;
  /** The database's instance id (src/db/instance.ts). */
  instance: string;
  databaseUrl: string;
  postmarkUrl: string;
  postmarkToken: string;
  /** More variables for the worker (EXPIRY_REMINDERS, EMAIL_MAX_PER_SECOND, WORKER_* knobs...). */
  env?: Record<string, string>;
  /** Flags for node itself, before the script (e.g. --max-old-space-size=320, --cpu-prof). */
  nodeArgs?: string[];
}

const CLI = path.resolve(__dirname, '../../src/programs/cli.js');
const READY_TIMEOUT_MS = 120_000;

export async function startWorker(settings: WorkerSettings): Promise<WorkerProcess> {
  const logPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'token-expiry-bench-worker-')), 'worker.log');
  const logFd = openSync(logPath, 'a');
  const child: ChildProcess = spawn(process.execPath, [...(settings.nodeArgs ?? []), CLI, 'worker'], {
    stdio: ['ignore', logFd, logFd],
    env: {
      ...process.env,
      // A cap left in the caller's shell would throttle every scenario; only the rate-cap scenario sets one.
      EMAIL_MAX_PER_SECOND: '',
      METRICS_PORT: '',
      LOG_LEVEL: process.env.BENCH_WORKER_LOG_LEVEL ?? 'INFO',
      DATABASE_URL: settings.databaseUrl,
      TEMPORAL_ADDRESS: settings.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: settings.taskQueue,
      POSTMARK_API_URL: settings.postmarkUrl,
      POSTMARK_SERVER_TOKEN: settings.postmarkToken,
      ...settings.env,
    },
  });
  closeSync(logFd);
  let exit: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `exited (code ${code}, signal ${signal})`;
      resolve();
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const logTail = (lines = 20) => {
    try {
      return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const worker: WorkerProcess = {
    pid: child.pid as number,
    logPath,
    memory: () => memoryOf(child.pid as number),
    logTail,
    async stop() {
      if (exit === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    await waitFor(deadline, () => exit, () => polling(settings.client, instanceTaskQueue(settings.taskQueue, settings.instance)), 'the worker to poll its task queue');
    await waitFor(deadline, () => exit, () => firstSweepDone(settings.client, settings.instance), 'the first sweep to finish');
  } catch (err) {
    await worker.stop();
    throw new Error(`${(err as Error).message}\nworker log (${logPath}):\n${logTail()}`);
  }
  return worker;
}

async function waitFor(deadline: number, exit: () => string | null, check: () => Promise<boolean>, what: string): Promise<void> {
  for (;;) {
    const gone = exit();
    if (gone) throw new Error(`the worker ${gone} while waiting for ${what}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const { TaskQueueType } = temporal.api.enums.v1;

async function polling(client: Client, taskQueue: string): Promise<boolean> {
  for (const taskQueueType of [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]) {
    const { pollers } = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType,
    });
    if (!pollers || pollers.length === 0) return false;
  }
  return true;
}

/**
 * The worker creates the sweep's schedule and triggers it at once; the bench waits for that sweep so
 * that it does not race the scenario's own starts. A build without the schedule has nothing to wait for.
 */
async function firstSweepDone(client: Client, instance: string): Promise<boolean> {
  try {
    const { info } = await client.schedule.getHandle(sweepScheduleId(instance)).describe();
    return info.runningActions.length === 0 && info.recentActions.length > 0;
  } catch (err) {
    if ((err as Error).name === 'ScheduleNotFoundError') return true;
    throw err;
  }
}
