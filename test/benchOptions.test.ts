// `npm run bench`'s engine flags: what an operator types is either run as asked or refused with a message
// that says what to type instead, before any server starts.
import { parseOptions, SIDE_BY_SIDE, UsageError } from '../bench/lib/options';

const parse = (...argv: string[]) => parseOptions(argv, () => undefined);

function refusal(...argv: string[]): string {
  try {
    parse(...argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`npm run bench -- ${argv.join(' ')} was accepted`);
}

test('without an engine flag the bench runs on the dev server, every scenario as before', () => {
  const options = parse();
  expect(options.engines).toEqual([{ kind: 'dev' }]);
  expect(options.scenarios).toContain('idle');
});

test('--engine cluster runs the production shard count unless --shards says otherwise, and the side-by-side scenarios', () => {
  expect(parse('--engine', 'cluster').engines).toEqual([{ kind: 'cluster', shards: 512 }]);
  const options = parse('--engine', 'cluster', '--shards', '16');
  expect(options.engines).toEqual([{ kind: 'cluster', shards: 16 }]);
  expect(options.scenarios).toEqual([...SIDE_BY_SIDE]);
});

test('--engines runs several engines in one invocation, in the order given', () => {
  expect(parse('--engines', 'dev,cluster:1,cluster:4,cluster:16,cluster:512').engines).toEqual([
    { kind: 'dev' },
    { kind: 'cluster', shards: 1 },
    { kind: 'cluster', shards: 4 },
    { kind: 'cluster', shards: 16 },
    { kind: 'cluster', shards: 512 },
  ]);
});

test('an unknown engine is refused, naming the engines there are', () => {
  expect(refusal('--engine', 'docker')).toMatch(/--engine: "docker" is not an engine \(use dev, cluster/);
  expect(refusal('--engines', 'dev,postgres:4')).toMatch(/--engines: "postgres:4" is not an engine/);
});

test.each(['0', '-4', '4.5', 'many', '99999'])('--shards %s is refused with the range to use', (shards) => {
  expect(refusal('--engine', 'cluster', `--shards=${shards}`)).toMatch(
    new RegExp(`--shards: "${shards.replace('.', '\\.')}" is not a history shard count \\(use a whole number from 1 to 4096`),
  );
});

test('a bad shard count inside --engines is refused the same way', () => {
  expect(refusal('--engines', 'dev,cluster:0')).toMatch(/--engines: "0" is not a history shard count/);
  expect(refusal('--engines', 'cluster:')).toMatch(/--engines: "" is not a history shard count/);
});

test('shards for the dev server are refused: it has one, always', () => {
  expect(refusal('--shards', '4')).toMatch(/--shards 4 applies to the cluster only: add --engine cluster/);
  expect(refusal('--engines', 'dev:4')).toMatch(/the dev server has one history shard/);
});

test('an engine listed twice, or --engines mixed with --engine, is refused', () => {
  expect(refusal('--engines', 'cluster:4,cluster:4')).toMatch(/cluster:4 is listed twice/);
  expect(refusal('--engines', 'dev', '--shards', '4')).toMatch(/leave out --engine and --shards/);
});
