import type { BundleApi } from '../../src/runtime/registrar/bundle-publisher';
import { publishBundle } from '../../src/runtime/registrar/bundle-publisher';

/** The API's ConfigMaps in memory; writes to namespaces in `refuse` fail. */
function memoryApi(namespaces: string[], existing: Record<string, string>, refuse: string[] = []) {
  const writes: string[] = [];
  const api: BundleApi = {
    listNamespaces: () => Promise.resolve(namespaces),
    listBundles: () =>
      Promise.resolve(
        Object.entries(existing).map(([namespace, bundle]) => ({
          namespace,
          data: { 'bundle.crt': bundle },
          resourceVersion: '7',
          owned: true,
        })),
      ),
    create: (namespace) => {
      if (refuse.includes(namespace)) return Promise.reject(new Error('forbidden'));
      writes.push(`create ${namespace}`);
      return Promise.resolve();
    },
    replace: (namespace, _data, resourceVersion) => {
      writes.push(`replace ${namespace}@${resourceVersion}`);
      return Promise.resolve();
    },
  };
  return { api, writes };
}

describe('trust bundle publication', () => {
  it('creates missing copies, replaces stale ones and leaves current ones alone', async () => {
    const { api, writes } = memoryApi(['a', 'b', 'c'], { b: 'old', c: 'new' });
    const result = await publishBundle(api, 'new');
    expect(writes).toEqual(['create a', 'replace b@7']);
    expect(result).toEqual({ written: 2, failed: new Map() });
  });

  it('keeps going past a namespace it cannot write, and names it', async () => {
    const { api, writes } = memoryApi(['a', 'b'], {}, ['a']);
    const result = await publishBundle(api, 'new');
    expect(writes).toEqual(['create b']);
    expect(result.failed).toEqual(new Map([['a', 'forbidden']]));
  });
});
