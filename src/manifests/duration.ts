// Go-style durations ("5s", "1m30s", "250ms", "720h"), because NGINX Service Mesh's flags and
// configuration use them and users copy values between the two.

const unitMs: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const segment = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/**
 * Parses a Go duration into milliseconds. Returns undefined for anything Go's
 * time.ParseDuration would reject, except that negative durations are rejected too.
 */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  let total = 0;
  segment.lastIndex = 0;
  while (segment.lastIndex < text.length) {
    const start = segment.lastIndex;
    const match = segment.exec(text);
    if (match === null || match.index !== start) return undefined;
    const [, amount, unit] = match;
    if (amount === undefined || unit === undefined) return undefined;
    total += Number(amount) * (unitMs[unit] ?? Number.NaN);
  }
  return Number.isFinite(total) ? total : undefined;
}

/** Formats milliseconds as Go's Duration.String() does ("5s", "5m0s", "1h0m0s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1_000) return `${trimNumber(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1_000;
  const secondsText = `${trimNumber(seconds)}s`;
  if (hours > 0) return `${hours}h${minutes}m${secondsText}`;
  if (minutes > 0) return `${minutes}m${secondsText}`;
  return secondsText;
}

function trimNumber(value: number): string {
  return String(Number(value.toFixed(9)));
}
