/**
 * The built command (`node dist/src/programs/cli.js ...`) as a child process that a test can kill -9: every line
 * it prints is kept (for failure messages and the privacy scan), and an exit the test did not cause is
 * remembered so that a crash fails the test instead of passing unnoticed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { eventually } from './poll';

export const CLI_PATH = path.resolve(__dirname, '../../dist/src/programs/cli.js');

export function requireBuiltCli(): void {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first (scripts/test does)`);
}

/**
 * Only what the command needs, so that a DATABASE_URL or TEMPORAL_ADDRESS exported by scripts/test (or a
 * developer's shell) never points a child at the wrong database or server.
 */
export function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (process.env.HOME) base.HOME = process.env.HOME;
  return { ...base, ...vars };
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The test asked for it (kill or stop). */
  expected: boolean;
}

export interface OutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
}

const OUTPUT_KEPT = 20_000;

export class CliProcess {
  readonly lines: OutputLine[] = [];
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;
  private stopping = false;
  private readonly child: ChildProcess;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  private constructor(
    readonly name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    requireBuiltCli();
    this.child = spawn(process.execPath, [CLI_PATH, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of ['stdout', 'stderr'] as const) {
      let partial = '';
      this.child[stream]?.setEncoding('utf8');
      this.child[stream]?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const text of parts) this.keep({ stream, text });
      });
      this.child[stream]?.on('end', () => {
        if (partial) this.keep({ stream, text: partial });
        partial = '';
      });
    }
    this.exited = new Promise<ProcessExit>((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, expected: this.stopping };
        process.off('exit', this.killOnExit);
        resolve(this.exit);
      });
      this.child.once('error', (err) => {
        this.keep({ stream: 'stderr', text: `spawn failed: ${err.message}` });
        this.exit = { code: null, signal: null, expected: false };
        resolve(this.exit);
      });
    });
    // A jest run that dies without afterAll must not leave a worker polling a dead server.
    process.on('exit', this.killOnExit);
  }

  static start(name: string, args: string[], env: NodeJS.ProcessEnv): CliProcess {
    return new CliProcess(name, args, env);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Set when the process ended without the test asking. */
  get crashed(): ProcessExit | undefined {
    return this.exit && !this.exit.expected ? this.exit : undefined;
  }

  private keep(line: OutputLine): void {
    this.lines.push(line);
    if (this.lines.length > OUTPUT_KEPT) this.lines.splice(0, this.lines.length - OUTPUT_KEPT);
  }

  /** The JSON log lines (the worker and the API log one object per line on stderr). */
  jsonLines(): Record<string, unknown>[] {
    const parsed: Record<string, unknown>[] = [];
    for (const { text } of this.lines) {
      if (!text.startsWith('{')) continue;
      try {
        parsed.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        // a partial or foreign line: kept as text only
      }
    }
    return parsed;
  }

  /** The last lines, for failure messages. */
  tail(count = 40): string {
    return this.lines
      .slice(-count)
      .map(({ stream, text }) => `[${this.name} ${stream}] ${text.length > 600 ? `${text.slice(0, 600)}...` : text}`)
      .join('\n');
  }

  async waitForLog(what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs = 60_000): Promise<void> {
    await eventually(`${this.name}: ${what}`, () => this.jsonLines().some(match), {
      timeoutMs,
      abort: () => (this.running ? undefined : `${this.name} exited (${JSON.stringify(this.exit)}):\n${this.tail()}`),
    });
  }

  /** SIGKILL: the process gets no chance to finish anything (kill -9). */
  async kill(): Promise<ProcessExit> {
    return this.signal('SIGKILL');
  }

  /** SIGTERM, and SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 40_000): Promise<ProcessExit> {
    if (!this.running) return this.exit as ProcessExit;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.signal('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }

  private async signal(signal: NodeJS.Signals): Promise<ProcessExit> {
    if (this.running) {
      this.stopping = true;
      this.child.kill(signal);
    }
    return this.exited;
  }
}
