// What /proc says about a process (memory, CPU time) and about the machine (load, CPU use).
import { readFileSync } from 'node:fs';
import os from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface Memory {
  /** Resident set size now, and its high-water mark over the process's life, in MiB. */
  rssMiB: number;
  peakRssMiB: number;
}

/** VmRSS and VmHWM of a live process; null once it is gone. */
export function memoryOf(pid: number): Memory | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

/** User + system CPU seconds a process has used so far (its threads included). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = os.loadavg();
  return [one ?? 0, five ?? 0, fifteen ?? 0];
}

/** Busy and total jiffies of all CPUs so far; the difference of two readings gives the machine's CPU use. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU seconds used by each named process between `start()` and `stop()`, and the machine's busy share. */
export function cpuMeter(pids: Record<string, number | null | undefined>) {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, pid ? cpuSecondsOf(pid) : Number.NaN]));
  const machineBefore = machineCpu();
  const startedAt = Date.now();
  return {
    stop(): { seconds: number; cpuSeconds: Record<string, number>; machineBusyPercent: number } {
      const seconds = (Date.now() - startedAt) / 1000;
      const cpuSeconds = Object.fromEntries(
        Object.entries(pids).map(([name, pid]) => [name, pid ? Math.round((cpuSecondsOf(pid) - (before[name] ?? 0)) * 10) / 10 : Number.NaN]),
      );
      const machine = machineCpu();
      const busy = (machine.busy - machineBefore.busy) / Math.max(1, machine.total - machineBefore.total);
      return { seconds, cpuSeconds, machineBusyPercent: Math.round(busy * 100) };
    },
  };
}
