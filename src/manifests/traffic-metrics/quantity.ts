// Kubernetes quantities (resource.Quantity) as TrafficMetrics carry their values: "2969m" is
// 2.969, "9" is 9, "2k" is 2000. Pure.

const DECIMAL_SUFFIXES: readonly (readonly [string, number])[] = [
  ['k', 3],
  ['M', 6],
  ['G', 9],
  ['T', 12],
  ['P', 15],
  ['E', 18],
];

/**
 * Formats a value in Kubernetes' canonical decimal form with milli precision (rounded to the
 * nearest thousandth): 2.969 → "2969m", 9 → "9", 2000 → "2k", 1500 → "1500". Not finite → "0".
 */
export function formatQuantity(value: number): string {
  if (!Number.isFinite(value)) return '0';
  const milli = Math.round(value * 1000);
  if (milli % 1000 !== 0) return `${milli}m`;
  let mantissa = milli / 1000;
  let suffix = '';
  for (const [name] of DECIMAL_SUFFIXES) {
    if (mantissa === 0 || mantissa % 1000 !== 0) break;
    mantissa /= 1000;
    suffix = name;
  }
  return `${mantissa}${suffix}`;
}

const SUFFIX_FACTORS: Readonly<Record<string, number>> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Parses a Kubernetes quantity ("2969m", "9", "1.5k", "1e3", "2Ki"); undefined when malformed. */
export function parseQuantity(text: string): number | undefined {
  const match = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([a-zA-Z]*))$/.exec(text);
  if (match === null) return undefined;
  const [, number, exponent, suffix] = match;
  const factor =
    exponent === undefined ? SUFFIX_FACTORS[suffix ?? ''] : 10 ** Number(exponent.slice(1));
  if (factor === undefined) return undefined;
  return Number(number) * factor;
}
