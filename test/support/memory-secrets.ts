// Secrets and a caBundle target in memory, with the API server's optimistic concurrency: every
// write bumps the resourceVersion, a create of an existing Secret and an update naming an old
// resourceVersion are refused as conflicts. Records every attempt, for assertions.
import type {
  CaBundleTarget,
  CertificateStore,
  SecretWrite,
  StoredSecret,
} from '../../src/runtime/pki/managed-certificate';

export interface SecretAttempt {
  readonly verb: 'create' | 'update';
  readonly resourceVersion: string | undefined;
  readonly result: SecretWrite;
}

export interface MemorySecrets extends CertificateStore {
  readonly attempts: SecretAttempt[];
  /** The Secret as stored now. */
  peek(): StoredSecret | undefined;
  /** Runs before the next write is judged (another replica writing in between). */
  beforeNextWrite(action: () => void): void;
  /** Writes as another replica would, bypassing the checks. */
  put(data: Readonly<Record<string, string>>): void;
}

export function memorySecrets(): MemorySecrets {
  let secret: StoredSecret | undefined;
  let version = 0;
  let pending: (() => void) | undefined;
  const attempts: SecretAttempt[] = [];
  const put = (data: Readonly<Record<string, string>>): void => {
    version += 1;
    secret = { data: { ...data }, resourceVersion: String(version) };
  };
  const runPending = (): void => {
    const action = pending;
    pending = undefined;
    action?.();
  };
  return {
    attempts,
    peek: () => secret,
    beforeNextWrite: (action) => void (pending = action),
    put,
    readSecret: () => Promise.resolve(secret),
    createSecret(_namespace, _name, data) {
      runPending();
      const result: SecretWrite = secret === undefined ? 'written' : 'conflict';
      if (result === 'written') put(data);
      attempts.push({ verb: 'create', resourceVersion: undefined, result });
      return Promise.resolve(result);
    },
    updateSecret(_namespace, _name, data, resourceVersion) {
      runPending();
      const result: SecretWrite =
        secret?.resourceVersion === resourceVersion ? 'written' : 'conflict';
      if (result === 'written') put(data);
      attempts.push({ verb: 'update', resourceVersion, result });
      return Promise.resolve(result);
    },
  };
}

export interface MemoryTarget extends CaBundleTarget {
  /** Every caBundle published, in order (base64). */
  readonly published: string[];
}

export function memoryTarget(): MemoryTarget {
  const published: string[] = [];
  return {
    description: 'MutatingWebhookConfiguration test-webhook',
    published,
    publish(caBundle) {
      published.push(caBundle);
      return Promise.resolve(true);
    },
  };
}
