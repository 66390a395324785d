import { formatDuration, parseDuration } from '../../src/manifests/duration';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['5s', 5_000],
    ['250ms', 250],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['720h', 2_592_000_000],
    ['100us', 0.1],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '5', 'five', '5x', '-5s', '5s ', 's', '1h-1m'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [5_000, '5s'],
    [300_000, '5m0s'],
    [3_600_000, '1h0m0s'],
    [90_500, '1m30.5s'],
    [250, '250ms'],
  ])('prints %d ms as Go does: %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips what it prints', () => {
    for (const ms of [1, 999, 1_000, 61_000, 7_265_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
