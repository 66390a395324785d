import { describeTarget, percentile, summarize, verdict } from '../../bench/support/targets';

describe('bench targets', () => {
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
    [500, { atMost: 500 }, 'met'],
    [500.1, { atMost: 500 }, 'missed'],
    [0.9, { atLeast: 0.9 }, 'met'],
    [0.89, { atLeast: 0.9 }, 'missed'],
    [Number.NaN, { atMost: 500 }, 'missed'],
  ] as const)('judges %d against %j as %s', (value, target, expected) => {
    expect(verdict(value, target)).toBe(expected);
  });

  it('describes a target as the report prints it', () => {
    expect(describeTarget({ atMost: 500 })).toBe('target <= 500');
  });
});
