import {
  parseParentPid,
  reloadComplete,
  reloadRefusal,
  restartDelayMs,
  summarizeNginxOutput,
} from '../../src/runtime/agent/supervisor-policy';

describe('restartDelayMs', () => {
  const backoff = { initialMs: 1_000, maxMs: 30_000 };

  it.each([
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [5, 16_000],
    [6, 30_000],
    [1_000, 30_000],
  ])('waits before restart %d for %d ms', (failures, ms) => {
    expect(restartDelayMs(failures, backoff)).toBe(ms);
  });

  it('never waits less than the initial delay', () => {
    expect(restartDelayMs(0, backoff)).toBe(1_000);
  });
});

describe('parseParentPid', () => {
  it('reads the fourth field of a stat line', () => {
    expect(parseParentPid('5057 (nginx) S 5051 5045 5045 0 -1 4194624')).toBe(5051);
  });

  it('counts fields from the last parenthesis of the command name', () => {
    expect(parseParentPid('42 (a) b (c)) R 7 42 42 0')).toBe(7);
  });

  it.each(['', 'garbage', '1 (x) S'])('returns undefined for %j', (text) => {
    expect(parseParentPid(text)).toBeUndefined();
  });
});

describe('reloadComplete', () => {
  const worker = (pid: number) => ({ pid, title: 'nginx: worker process' });
  const leaving = (pid: number) => ({ pid, title: 'nginx: worker process is shutting down' });

  it('is false while the master has only the children it had', () => {
    expect(reloadComplete(new Set([10]), [worker(10)])).toBe(false);
    expect(reloadComplete(new Set([10]), [leaving(10)])).toBe(false);
  });

  it('is false while an old worker still accepts beside the new one', () => {
    expect(reloadComplete(new Set([10]), [worker(10), worker(11)])).toBe(false);
  });

  it('is true once the new worker runs and the old ones shut down or exited', () => {
    expect(reloadComplete(new Set([10]), [leaving(10), worker(11)])).toBe(true);
    expect(reloadComplete(new Set([10]), [worker(11)])).toBe(true);
    expect(reloadComplete(new Set(), [worker(11)])).toBe(true);
  });
});

describe('reloadRefusal', () => {
  it('extracts the reason of an emerg line', () => {
    expect(
      reloadRefusal(
        '2026/11/26 04:54:05 [emerg] 5051#5051: bind() to 127.0.0.1:80 failed (98: Address already in use)',
      ),
    ).toBe('bind() to 127.0.0.1:80 failed (98: Address already in use)');
  });

  it.each([
    '2026/11/26 04:54:05 [notice] 5051#5051: reconfiguring',
    '2026/11/26 04:54:05 [warn] 5051#5051: conflicting server name "a" on 0.0.0.0:80, ignored',
    'the word [emerg] alone',
  ])('ignores %j', (line) => {
    expect(reloadRefusal(line)).toBeUndefined();
  });
});

describe('summarizeNginxOutput', () => {
  it('joins the last non-empty lines into one', () => {
    expect(summarizeNginxOutput('a\n\n  b \nc\nd\n')).toBe('b | c | d');
  });

  it('returns an empty line for no output', () => {
    expect(summarizeNginxOutput('\n \n')).toBe('');
  });
});
