/**
 * The docs' promises about themselves: every shell example that needs no server runs as written and exits as
 * documented, every link between the pages reaches a heading, and every picture is where a page shows it from.
 * A block that needs a running system says so in a `<!-- example: needs ... -->` comment before it (run by hand);
 * `<!-- example: exits N -->` names a documented exit code other than 0. scripts/test builds before jest.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const PAGES = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

interface Example {
  where: string;
  script: string;
  /** Why it is not run here; null: it runs. */
  needs: string | null;
  exitCode: number;
}

const FENCE = /^( *)```(sh|bash)\s*$/;
const MARKER = /^\s*<!-- example: (.*?) -->\s*$/;

function examplesOf(page: string): Example[] {
  const lines = readFileSync(path.join(ROOT, page), 'utf8').split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!;
    const body: string[] = [];
    let end = i + 1;
    for (; end < lines.length && lines[end]!.trim() !== '```'; end++) body.push(lines[end]!.slice(indent.length));
    const marker = MARKER.exec(lines[i - 1] ?? '')?.[1] ?? '';
    const exits = /^exits (\d+)$/.exec(marker);
    examples.push({
      where: `${page}:${i + 1}`,
      script: body.join('\n'),
      needs: marker.startsWith('needs ') ? marker.slice('needs '.length) : null,
      exitCode: exits ? Number(exits[1]) : 0,
    });
    i = end;
  }
  return examples;
}

const examples = PAGES.flatMap(examplesOf);

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const base = heading[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

describe('shell examples that need no server', () => {
  let bin: string;
  beforeAll(() => {
    // `token-expiry` as the docs call it: the built command.
    bin = mkdtempSync(path.join(tmpdir(), 'doc-examples-'));
    const shim = path.join(bin, 'token-expiry');
    writeFileSync(shim, `#!/bin/sh\nexec node ${JSON.stringify(path.join(ROOT, 'dist/src/programs/cli.js'))} "$@"\n`);
    chmodSync(shim, 0o755);
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  const runnable = examples.filter((e) => e.needs === null);

  test('there are some, and each one that is not run says what it needs', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(4);
    for (const e of examples.filter((x) => x.needs !== null)) expect([e.where, e.needs!.length > 10]).toEqual([e.where, true]);
  });

  test.each(runnable.map((e) => [e.where, e] as const))('%s exits as documented', (_where, example) => {
    const run = spawnSync('bash', ['-e', '-c', example.script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
      timeout: 30_000,
    });
    // The stderr is in the comparison only when the exit code is wrong, so a failure shows why.
    expect({ status: run.status, stderr: run.status === example.exitCode ? '' : run.stderr }).toEqual({ status: example.exitCode, stderr: '' });
    // Something a reader can see: the usage, the SQL, the options, or the error that names the variable.
    expect(`${run.stdout}${run.stderr}`.trim()).not.toBe('');
  });
});

describe('links and pictures', () => {
  test.each(PAGES)('%s: every picture exists and every link to a page of ours reaches a heading', (page) => {
    const text = readFileSync(path.join(ROOT, page), 'utf8').replace(/^\s*```[\s\S]*?^\s*```/gm, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [file, anchor] = target!.split('#', 2) as [string, string | undefined];
      const resolved = file === '' ? path.join(ROOT, page) : path.resolve(path.dirname(path.join(ROOT, page)), file);
      // Pages other branches add (webhooks, preferences, cluster faults, layout, ...) may not be here yet.
      if (!existsSync(resolved)) {
        if (/\.(png|jpe?g|svg)$/.test(file)) broken.push(`${target}: no such picture`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) {
        broken.push(`${target}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });

  test('the README stays a first read: under 15 KB', () => {
    expect(readFileSync(path.join(ROOT, 'README.md')).length).toBeLessThan(15_000);
  });
});
