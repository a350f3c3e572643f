import assert from 'node:assert/strict';
import { it } from 'node:test';
import { timeToGo } from '../../src/schedule/time-to-go.ts';

const M = 60_000;
const H = 60 * M;
const D = 24 * H;

it('says how long until the next run, kubectl-style, to the minute at most', () => {
  const cases: [number, string][] = [
    [-5000, 'in <1m'],
    [59_000, 'in <1m'],
    [M, 'in 1m'],
    [45 * M + 59_000, 'in 45m'],
    [3 * H, 'in 3h'],
    [3 * H + 20 * M, 'in 3h20m'],
    [23 * H + 59 * M, 'in 23h'],
    [6 * D + 23 * H, 'in 6d23h'],
    [7 * D, 'in 7d'],
    [30 * D + 5 * H, 'in 30d'],
  ];
  for (const [ms, text] of cases) assert.equal(timeToGo(1_000_000, 1_000_000 + ms), text, `${ms} ms`);
});
