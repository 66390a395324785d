// The sidecar report's token: every controller replica ends up serving the one stored token.
import type { ReportTokenStore } from '../../src/runtime/controller/report-token';
import { loadReportToken } from '../../src/runtime/controller/report-token';

/** A Secret in memory; `racer` is what another replica creates just before this one does. */
function memoryStore(initial?: string, racer?: string): ReportTokenStore & { creates: string[] } {
  let stored = initial;
  const creates: string[] = [];
  return {
    creates,
    read: () => Promise.resolve(stored),
    create: (token) => {
      creates.push(token);
      if (racer !== undefined) {
        stored = racer;
        return Promise.resolve('conflict');
      }
      if (stored !== undefined) return Promise.resolve('conflict');
      stored = token;
      return Promise.resolve('written');
    },
  };
}

describe('loadReportToken', () => {
  it('serves the stored token and creates nothing', async () => {
    const store = memoryStore('stored');
    expect(await loadReportToken(store, () => 'new')).toBe('stored');
    expect(store.creates).toEqual([]);
  });

  it('creates the Secret with a new token when there is none', async () => {
    const store = memoryStore();
    expect(await loadReportToken(store, () => 'new')).toBe('new');
    expect(store.creates).toEqual(['new']);
  });

  it("takes the other replica's token when it created the Secret first", async () => {
    const store = memoryStore(undefined, 'theirs');
    expect(await loadReportToken(store, () => 'mine')).toBe('theirs');
  });
});
