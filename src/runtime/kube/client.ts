// Typed requests over a KubeConnection: get, list, server-side apply, patch and delete, with the
// API server's own error message in every failure.
import { MeshctlError } from '../../errors';
import type { KubeConnection, RawResponse } from './access';

/** A Kubernetes API error: the HTTP status, the Status reason and the Status message. */
export class KubeApiError extends MeshctlError {
  constructor(
    message: string,
    readonly status: number,
    readonly reason = '',
  ) {
    super(message, hintFor(status));
  }
}

function hintFor(status: number): { hint?: string } {
  if (status === 401) return { hint: 'Check credentials and retry command.' };
  if (status === 403) {
    return {
      hint: 'The kubeconfig user lacks this permission: use a context allowed to do it (kubectl auth can-i), then retry.',
    };
  }
  return {};
}

interface StatusBody {
  message?: unknown;
  reason?: unknown;
}

function parseStatus(body: string): StatusBody {
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

/** The error a non-2xx response stands for. */
export function apiError(response: RawResponse): KubeApiError {
  const status = parseStatus(response.body);
  const message =
    typeof status.message === 'string' && status.message !== ''
      ? status.message
      : `the API server answered ${response.status}`;
  return new KubeApiError(
    message,
    response.status,
    typeof status.reason === 'string' ? status.reason : '',
  );
}

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly resourceVersion?: string;
    readonly uid?: string;
    readonly creationTimestamp?: string;
    readonly deletionTimestamp?: string;
    readonly ownerReferences?: readonly { kind: string; name: string; controller?: boolean }[];
  };
}

export interface KubeList<T> {
  readonly items: readonly T[];
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
}

const APPLY_PATCH = 'application/apply-patch+yaml';
const MERGE_PATCH = 'application/merge-patch+json';
/** Pages of at most this many objects; every list is bounded by LIST_PAGES_MAX pages. */
const LIST_PAGE_SIZE = 500;
const LIST_PAGES_MAX = 200;

export class KubeClient {
  constructor(readonly connection: KubeConnection) {}

  private async call<T>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const response = await this.connection.request({
      method,
      path,
      ...(body === undefined ? {} : { body }),
      ...(contentType === undefined ? {} : { contentType }),
    });
    if (response.status < 200 || response.status > 299) throw apiError(response);
    return (response.body === '' ? {} : JSON.parse(response.body)) as T;
  }

  /** The object at path, or undefined when it does not exist. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.call<T>('GET', path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Every object of a collection, page by page; undefined when the collection does not exist. */
  async list<T>(path: string, labelSelector?: string): Promise<T[] | undefined> {
    const query = new URLSearchParams();
    if (labelSelector !== undefined) query.set('labelSelector', labelSelector);
    return (await this.listVersioned<T>(path, query))?.items;
  }

  /**
   * Every object of a collection with the resourceVersion the list was read at (where a watch
   * of the same collection starts); undefined when the collection does not exist.
   */
  async listVersioned<T>(
    path: string,
    selectors: URLSearchParams = new URLSearchParams(),
  ): Promise<{ items: T[]; resourceVersion: string } | undefined> {
    const items: T[] = [];
    let next = '';
    let resourceVersion = '';
    for (let page = 0; page < LIST_PAGES_MAX; page += 1) {
      const query = new URLSearchParams({ limit: String(LIST_PAGE_SIZE) });
      for (const [name, value] of selectors) query.set(name, value);
      if (next !== '') query.set('continue', next);
      const list = await this.get<KubeList<T>>(`${path}?${query.toString()}`);
      if (list === undefined) return undefined;
      items.push(...list.items);
      // Every page of a continued list is read at the first page's version.
      if (page === 0) resourceVersion = list.metadata?.resourceVersion ?? '';
      next = list.metadata?.continue ?? '';
      if (next === '') return { items, resourceVersion };
    }
    throw new MeshctlError(`listing ${path} returned more than ${LIST_PAGES_MAX} pages`);
  }

  /** Server-side apply: the object as fieldManager wants it, taking over conflicting fields. */
  apply<T>(path: string, object: unknown, fieldManager: string): Promise<T> {
    const query = new URLSearchParams({ fieldManager, force: 'true' });
    return this.call<T>('PATCH', `${path}?${query.toString()}`, object, APPLY_PATCH);
  }

  mergePatch<T>(path: string, patch: unknown): Promise<T> {
    return this.call<T>('PATCH', path, patch, MERGE_PATCH);
  }

  /** PUT: replaces the object; a metadata.resourceVersion in it makes this fail with 409 if stale. */
  replace<T>(path: string, object: unknown): Promise<T> {
    return this.call<T>('PUT', path, object);
  }

  create<T>(path: string, object: unknown): Promise<T> {
    return this.call<T>('POST', path, object);
  }

  /** Deletes with background propagation; false when it was already gone. */
  async delete(path: string): Promise<boolean> {
    try {
      await this.call('DELETE', path, { propagationPolicy: 'Background' });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
