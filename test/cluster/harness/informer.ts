// List-then-watch of one resource, with relist on expired resource versions and bounded
// reconnect backoff: the cache the node agent acts on.
import type { KubeObject, KubeRest, WatchEvent } from './kube-rest';
import { KubeRestError } from './kube-rest';

export interface Informer<T extends KubeObject> {
  /** Current objects by "namespace/name". */
  readonly items: ReadonlyMap<string, T>;
  /** Resolves once the first list has been loaded. */
  readonly synced: Promise<void>;
  stop(): void;
}

export type InformerHandler<T> = (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;

export function keyOf(object: KubeObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

const MAX_BACKOFF_MS = 5_000;

export function startInformer<T extends KubeObject>(
  rest: KubeRest,
  listPath: string,
  onChange: InformerHandler<T>,
  onError: (error: unknown) => void,
): Informer<T> {
  const items = new Map<string, T>();
  const abort = new AbortController();
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));

  async function relist(): Promise<string> {
    const list = await rest.request<{ metadata: { resourceVersion: string }; items: T[] }>(
      'GET',
      listPath,
    );
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = keyOf(item);
      seen.add(key);
      const before = items.get(key);
      items.set(key, item);
      if (before === undefined) onChange('ADDED', item);
      else if (before.metadata.resourceVersion !== item.metadata.resourceVersion)
        onChange('MODIFIED', item);
    }
    for (const [key, item] of [...items]) {
      if (!seen.has(key)) {
        items.delete(key);
        onChange('DELETED', item);
      }
    }
    markSynced();
    return list.metadata.resourceVersion;
  }

  async function run(): Promise<void> {
    let resourceVersion = '';
    let backoff = 100;
    while (!abort.signal.aborted) {
      try {
        if (resourceVersion === '') resourceVersion = await relist();
        let expired = false;
        await rest.watch<T>(
          listPath,
          resourceVersion,
          (event: WatchEvent<T>) => {
            if (event.type === 'ERROR') {
              expired = true;
              return;
            }
            resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
            if (event.type === 'BOOKMARK') return;
            const key = keyOf(event.object);
            if (event.type === 'DELETED') items.delete(key);
            else items.set(key, event.object);
            onChange(event.type, event.object);
          },
          abort.signal,
        );
        if (expired) resourceVersion = '';
        backoff = 100;
      } catch (error) {
        if (abort.signal.aborted) return;
        if (error instanceof KubeRestError && error.status === 410) resourceVersion = '';
        else onError(error);
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  void run();
  return { items, synced, stop: () => abort.abort() };
}
