import { percentile, summarize } from '../../bench/support/summary';
import { targetLine, verdictOf } from '../../bench/support/targets.mjs';

describe('bench figures', () => {
  it('takes the nearest-rank percentile', () => {
    const sorted = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
  });

  it('summarises an unsorted sample', () => {
    expect(summarize([30, 10, 20])).toEqual({ count: 3, p50: 20, p99: 30, max: 30 });
  });

  it('summarises an empty sample as NaN', () => {
    const summary = summarize([]);
    expect(summary.count).toBe(0);
    expect(summary.p99).toBeNaN();
    expect(summary.max).toBeNaN();
  });

  it.each([
    [500, { how: '<=', limit: 500 }, 'met'],
    [500.1, { how: '<=', limit: 500 }, 'missed'],
    [0.9, { how: '>=', limit: 0.9 }, 'met'],
    [0.89, { how: '>=', limit: 0.9 }, 'missed'],
    [0, { how: '=', limit: 0 }, 'met'],
    [Number.NaN, { how: '<=', limit: 500 }, 'missed'],
  ] as const)('judges %d against %j as %s', (value, target, expected) => {
    expect(verdictOf(value, target)).toBe(expected);
  });

  it('prints a figure with its target and verdict', () => {
    expect(targetLine('propagation_p99_ms', 7208.04, { how: '<=', limit: 500 }, 1)).toBe(
      'propagation_p99_ms 7208.0 (target <= 500: missed)',
    );
  });
});
