// What the e2e clients share: their command lines, their one JSON line of output, seeded bytes
// (so a test can send the same payload again and compare hashes) and latency percentiles.
import { createHash } from 'node:crypto';

/** Prints the outcome as one JSON line on stdout: the contract between a client and its test. */
export function printOutcome(outcome: object): void {
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

/** Prints usage on stderr and ends the process with the usage exit code. */
export function usageError(usage: string): never {
  process.stderr.write(`usage: ${usage}\n`);
  process.exit(2);
}

/** Host and port of `<host>:<port>`. */
export function hostPortOf(
  text: string | undefined,
  usage: string,
): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text ?? '');
  if (match?.[1] === undefined || match[2] === undefined) usageError(usage);
  return { host: match[1], port: Number(match[2]) };
}

/** A non-negative integer argument, or the fallback when it is absent. */
export function countOf(text: string | undefined, fallback: number, usage: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) usageError(usage);
  return value;
}

/** A byte generator for a seed (xorshift32): the same seed gives the same bytes on any host. */
export function seededBytes(seed: number): (length: number) => Buffer {
  let state = seed >>> 0 || 0x9e3779b9;
  return (length) => {
    const bytes = Buffer.alloc(length);
    for (let index = 0; index < length; index += 1) {
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      bytes[index] = state & 0xff;
    }
    return bytes;
  };
}

/** Hex SHA-256 of the buffers, concatenated. */
export function sha256Of(...buffers: readonly Buffer[]): string {
  const hash = createHash('sha256');
  for (const buffer of buffers) hash.update(buffer);
  return hash.digest('hex');
}

/** Milliseconds since start (a performance.now() reading), to a tenth. */
export function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/** The 50th and 99th percentiles of the samples (ms, nearest rank), to a hundredth. */
export function percentiles(samples: readonly number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number): number => {
    const value = sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
    return Math.round(value * 100) / 100;
  };
  return { p50Ms: rank(50), p99Ms: rank(99) };
}

/** Adds one to table[key]. */
export function bump(table: Record<string, number>, key: string): void {
  table[key] = (table[key] ?? 0) + 1;
}

/**
 * The promise's value, or 'timeout' after ms. The timer ends with the race: a pending timer would
 * keep the client's process alive after its outcome is printed.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after ms. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The error's code (ECONNRESET, …) or message. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
