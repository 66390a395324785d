// Which policy objects make nginx refuse a configuration, when the controller's checks let one
// through: a search that renders the configuration without some candidates and asks `nginx -t`,
// at most maxChecks times. Adding an object can only add reasons to refuse, so the search keeps a
// prefix of the candidates known to be accepted, finds by halving the first candidate whose
// addition is refused, leaves it out, and goes on with the rest: about log2(n) + 1 checks for
// each object left out. When the checks run out, every candidate not yet known to be harmless is
// left out too, so the result is always a set nginx accepted.

/** A candidate left out, and nginx's words about the configuration with it. */
export interface LeftOut<T> {
  readonly item: T;
  /** nginx's refusal, or undefined when the checks ran out before this one was tried alone. */
  readonly error?: string;
}

export interface Isolation<T> {
  /** The candidates the accepted configuration holds, in their order. */
  readonly kept: readonly T[];
  readonly leftOut: readonly LeftOut<T>[];
  /** `nginx -t` runs spent. */
  readonly checks: number;
}

/**
 * Splits items into those nginx accepts together and those it refuses. refusal(kept) checks the
 * configuration holding only the kept candidates: nginx's error, or undefined when accepted. The
 * caller knows the configuration with every item is refused (with firstError). Resolves to
 * undefined when even the configuration without any item is refused: the fault is elsewhere.
 */
export async function isolateRefused<T>(
  items: readonly T[],
  firstError: string,
  refusal: (kept: readonly T[]) => Promise<string | undefined>,
  maxChecks: number,
): Promise<Isolation<T> | undefined> {
  let checks = 0;
  const check = (kept: readonly T[]): Promise<string | undefined> => {
    checks += 1;
    return refusal(kept);
  };
  if ((await check([])) !== undefined) return undefined;
  const kept: T[] = [];
  const leftOut: LeftOut<T>[] = [];
  let rest = items;
  /** nginx's refusal of kept + rest, when known. */
  let restError: string | undefined = firstError;
  while (rest.length > 0) {
    if (restError === undefined) {
      if (checks >= maxChecks) break;
      restError = await check([...kept, ...rest]);
      if (restError === undefined) {
        kept.push(...rest);
        rest = [];
        break;
      }
    }
    // kept + rest[0, low) is accepted, kept + rest[0, high) refused with highError.
    let low = 0;
    let high = rest.length;
    let highError: string = restError;
    while (high - low > 1 && checks < maxChecks) {
      const middle = (low + high) >> 1;
      const error = await check([...kept, ...rest.slice(0, middle)]);
      if (error === undefined) low = middle;
      else [high, highError] = [middle, error];
    }
    kept.push(...rest.slice(0, low));
    if (high - low > 1) {
      rest = rest.slice(low);
      break;
    }
    leftOut.push({ item: rest[low] as T, error: highError });
    rest = rest.slice(high);
    restError = undefined;
  }
  leftOut.push(...rest.map((item) => ({ item })));
  return { kept, leftOut, checks };
}
