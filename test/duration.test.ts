import { formatDuration, parseDuration } from '../src/duration';

test.each([
  ['45s', 45_000],
  ['30m', 1_800_000],
  ['12h', 43_200_000],
  ['7d', 604_800_000],
  [' 1d ', 86_400_000],
  ['9999999s', 9_999_999_000],
])('"%s" is %d ms', (text, ms) => {
  expect(parseDuration(text)).toBe(ms);
});

test.each(['', 'd', '7', '7x', '7 d', '0d', '07d', '-3d', '1.5d', '10000000s', '7dd', 'x7d', '7D'])('"%s" is not a duration', (text) => {
  expect(parseDuration(text)).toBeNull();
});

test.each([
  [604_800_000, '7d'],
  [86_400_000, '1d'],
  [129_600_000, '36h'],
  [5_400_000, '90m'],
  [90_000, '90s'],
  [1_500, '2s'],
])('%d ms reads "%s"', (ms, label) => {
  expect(formatDuration(ms)).toBe(label);
});
