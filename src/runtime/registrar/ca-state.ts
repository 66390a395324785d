// The CA every replica shares: authorities kept in one Secret, rotated by the pure plan, written
// with optimistic concurrency so that two replicas (or a restart racing an old pod) converge on
// one set of keys. A conflict re-reads and re-plans; the loop is bounded.
import { REGISTRAR_CA_SECRET_KEY } from '../../manifests/constants';
import { nextPlanChange, planAuthorities } from '../../manifests/registrar/ca-plan';
import type { Logger } from '../role/log';
import type { Authority, AuthorityOptions, StoredAuthority } from './authority';
import { AuthorityError, createAuthority, issuedBy, loadAuthority } from './authority';

/** The Secret holding the authorities, as the registrar reads and writes it. */
export interface CaStore {
  /** The Secret's data and resourceVersion; undefined when it does not exist. */
  read(): Promise<{ data: Record<string, string>; resourceVersion: string } | undefined>;
  /** Creates it; false when it exists already (another replica won). */
  create(data: Record<string, string>): Promise<boolean>;
  /** Replaces it if unchanged since resourceVersion; false on a conflict. */
  replace(data: Record<string, string>, resourceVersion: string): Promise<boolean>;
}

/** The CA as loaded: the live authorities, the one that signs, and the trust bundle. */
export interface CaState {
  readonly authorities: readonly Authority[];
  readonly active: Authority;
  /** PEM roots workloads must trust: every live root, or the upstream bundle. */
  readonly bundlePem: string;
  /** When the plan next changes (ms since the epoch): reconcile again by then. */
  readonly nextChangeMs: number;
}

const MAX_ATTEMPTS = 5;

/** The validity window of a certificate, as the registrar reads it. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Why a CA cannot sign at `now`, in one line naming its validity window; undefined when it
 * can. A CA is valid from notBefore up to, not including, notAfter, as the rotation plan says.
 */
export function caValidityProblem(validity: Validity, now: Date): string | undefined {
  const window = `valid from ${validity.notBefore.toISOString()} until ${validity.notAfter.toISOString()}, now ${now.toISOString()}`;
  if (now.getTime() < validity.notBefore.getTime()) return `the CA is not valid yet: ${window}`;
  if (now.getTime() >= validity.notAfter.getTime()) return `the CA expired: ${window}`;
  return undefined;
}

/**
 * The authority that signs at `now` among those last read: the plan's choice, so that a
 * handover due while the Secret cannot be read still happens on time. When none is valid, the
 * one that was in force last (the latest to expire), or, before any, the last active one: the
 * CA whose window a refusal names.
 */
export function authorityInForce(state: CaState, now: Date): Authority {
  const plan = planAuthorities(
    state.authorities.map((authority) => authority.fields),
    now,
  );
  const planned = plan.active === undefined ? undefined : state.authorities[plan.active];
  if (planned !== undefined) return planned;
  let latest: Authority | undefined;
  for (const authority of state.authorities) {
    if (authority.fields.notBefore.getTime() > now.getTime()) continue;
    if (latest === undefined || authority.fields.notAfter > latest.fields.notAfter) {
      latest = authority;
    }
  }
  return latest ?? state.active;
}

function encode(authorities: readonly Authority[]): Record<string, string> {
  const stored = authorities.map((authority) => authority.stored);
  return { [REGISTRAR_CA_SECRET_KEY]: Buffer.from(JSON.stringify(stored)).toString('base64') };
}

function decode(data: Record<string, string>, secretName: string): Authority[] {
  const text = data[REGISTRAR_CA_SECRET_KEY];
  if (text === undefined) return [];
  let stored: unknown;
  try {
    stored = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
  } catch (error) {
    throw new AuthorityError(
      `Secret ${secretName} key ${REGISTRAR_CA_SECRET_KEY}: ${String(error)}`,
    );
  }
  if (!Array.isArray(stored)) {
    throw new AuthorityError(`Secret ${secretName} key ${REGISTRAR_CA_SECRET_KEY}: not a list`);
  }
  return stored.map((item, index) =>
    loadAuthority(item as StoredAuthority, `Secret ${secretName} authority ${index}`),
  );
}

function bundleOf(authorities: readonly Authority[], options: AuthorityOptions): string {
  if (options.upstream !== undefined) return options.upstream.bundlePem;
  return authorities.map((authority) => authority.stored.certificate).join('');
}

/**
 * Reads the shared CA, rotates it when the plan says so, and returns it. Authorities not issued
 * by the configured upstream (or, without one, not self-signed) are dropped, so changing
 * --upstream-ca-dir takes effect at once.
 */
export async function reconcileCa(
  store: CaStore,
  options: AuthorityOptions & { readonly secretName: string },
  now: () => Date,
  logger: Logger,
): Promise<CaState> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const current = await store.read();
    const loaded = current === undefined ? [] : decode(current.data, options.secretName);
    const fitting = loaded.filter((authority) => issuedBy(authority, options.upstream));
    const at = now();
    const plan = planAuthorities(
      fitting.map((authority) => authority.fields),
      at,
    );
    const live = plan.live.map((index) => fitting[index]).filter((a) => a !== undefined);
    const next = plan.needNext ? [await createAuthority(options, at)] : [];
    const wanted = [...live, ...next];
    const changed = next.length > 0 || wanted.length !== loaded.length;
    if (changed) {
      const data = encode(wanted);
      const written =
        current === undefined
          ? await store.create(data)
          : await store.replace(data, current.resourceVersion);
      if (!written) {
        logger.info('CA changed by another replica; reading it again', { attempt });
        continue;
      }
      logger.info('CA updated', {
        authorities: wanted.length,
        created: next.length,
        dropped: loaded.length - live.length,
      });
    }
    const replanned = planAuthorities(
      wanted.map((authority) => authority.fields),
      at,
    );
    const active = replanned.active === undefined ? undefined : wanted[replanned.active];
    if (active === undefined) throw new AuthorityError('no valid CA after rotation');
    return {
      authorities: wanted,
      active,
      bundlePem: bundleOf(wanted, options),
      nextChangeMs: nextPlanChange(
        wanted.map((authority) => authority.fields),
        at,
      ),
    };
  }
  throw new AuthorityError(
    `Secret ${options.secretName}: still conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}
