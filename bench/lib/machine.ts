// Which machine and versions produced the figures.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { temporalCliPath } from '../../scripts/devtools/devServer';
import { adminQuery } from '../../scripts/devtools/scratchDatabase';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  temporalCli: string;
  postgres: string;
}

export async function describeMachine(adminUrl: string): Promise<Machine> {
  const cpuModel =
    /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpuModel,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    temporalCli: run(temporalCliPath(), ['--version']),
    postgres: (await adminQuery(adminUrl, 'SHOW server_version').catch(() => ['unknown']))[0] ?? 'unknown',
  };
}

export function gitCommit(): { commit: string; dirty: boolean } {
  const commit = run('git', ['rev-parse', 'HEAD']);
  const status = run('git', ['status', '--porcelain', '--untracked-files=no']);
  return { commit, dirty: status !== '' && status !== 'unknown' };
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}
