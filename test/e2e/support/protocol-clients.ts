// The e2e protocol tests' clients (test/e2e/apps/*-client.ts), bundled once per test file and run
// on the host inside a pod's network namespace, where the pod's redirect sends their traffic
// through its sidecar as it sends the app's. Each prints one JSON line: the outcome a test asserts.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNetns } from '../../cluster/support/node-access';

export type ClientName =
  'grpc-client' | 'ws-client' | 'tcp-client' | 'udp-client' | 'http-client' | 'dns-client';

const ROOT = join(__dirname, '..', '..', '..');

/** The bundled clients of one test file. */
export interface ProtocolClients {
  /**
   * Runs client with args inside netns and resolves with its outcome; throws with its stderr when
   * it prints none. Bounded by timeoutMs.
   */
  run<T>(
    netns: string,
    client: ClientName,
    args: readonly string[],
    timeoutMs?: number,
  ): Promise<T>;
  /** Deletes the bundles. */
  remove(): void;
}

/** Bundles the clients (each with what it imports, into one CommonJS file) in a temporary directory. */
export async function bundleClients(names: readonly ClientName[]): Promise<ProtocolClients> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-mesh-e2e-clients-'));
  await Promise.all(
    names.map(async (name) => {
      const bundled = await execa(
        process.execPath,
        [
          join(ROOT, 'scripts', 'run-ts.mjs'),
          '--bundle-only',
          join(ROOT, 'test', 'e2e', 'apps', `${name}.ts`),
          join(dir, `${name}.cjs`),
        ],
        { reject: false, timeout: 60_000 },
      );
      if (bundled.exitCode !== 0) throw new Error(`bundling ${name} failed: ${bundled.stderr}`);
    }),
  );
  return {
    async run<T>(
      netns: string,
      client: ClientName,
      args: readonly string[],
      timeoutMs = 60_000,
    ): Promise<T> {
      const [file, argv] = inNetns(netns, [process.execPath, join(dir, `${client}.cjs`), ...args]);
      const result = await execa(file, argv, { reject: false, timeout: timeoutMs });
      const line = result.stdout.trim().split('\n').at(-1) ?? '';
      if (!line.startsWith('{'))
        throw new Error(
          `${client} ${args.join(' ')} printed no outcome (exit ${String(result.exitCode)}${result.timedOut ? ', timed out' : ''}): ${result.stderr}`,
        );
      return JSON.parse(line) as T;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What every gRPC scenario prints (grpc-client.ts), and the fields of the scenarios. */
export interface GrpcOutcome {
  readonly scenario: string;
  readonly code: number;
  readonly details: string;
  readonly initial: Record<string, string>;
  readonly trailing: Record<string, string>;
  readonly elapsedMs: number;
  readonly sentBytes?: number;
  readonly receivedBytes?: number;
  readonly sentSha256?: string;
  readonly receivedSha256?: string;
  readonly messages?: number;
  readonly firstMismatch?: number;
  readonly sentMessages?: number;
  readonly receivedCount?: number;
  readonly roundTrips?: number;
  readonly matched?: number;
}

/** What grpc-client's repeat scenario prints. */
export interface GrpcRepeatOutcome {
  readonly calls: number;
  readonly codes: Record<string, number>;
  readonly pods: Record<string, number>;
  readonly mismatches: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** What ws-client prints. */
export interface WebSocketOutcome {
  readonly status?: number;
  readonly body?: string;
  readonly hello?: string;
  readonly text?: { sent: number; matched: number };
  readonly binary?: { sent: number; matched: number };
  readonly heldMs?: number;
  readonly closeCode?: number;
  readonly error?: string;
}

/** What tcp-client prints. */
export interface TcpOutcome {
  readonly banner?: string;
  readonly received?: string;
  readonly closedByServer?: boolean;
  readonly closedAfterMs?: number;
  readonly closedDuringHold?: boolean;
  readonly heldMs?: number;
  readonly error?: string;
}

/** What udp-client prints. */
export interface UdpOutcome {
  readonly reply: string | null;
  readonly timeout: boolean;
  readonly error?: string;
}

/** What http-client prints: `once` (status, body) or `timed` (counts, percentiles). */
export interface HttpOutcome {
  readonly status?: number;
  readonly body?: string;
  readonly servedBy?: string | null;
  readonly error?: string;
  readonly statuses?: Record<string, number>;
  readonly pods?: Record<string, number>;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

/** What dns-client prints. */
export interface DnsOutcome {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly error?: string;
}

/** Writes one latency line for the run's report: the same calls through the mesh and without it. */
export function reportLatency(
  what: string,
  meshed: { p50Ms?: number; p99Ms?: number },
  direct: { p50Ms?: number; p99Ms?: number },
): void {
  const text = (value: number | undefined): string => (value === undefined ? '?' : `${value}ms`);
  process.stderr.write(
    `latency ${what}: mesh p50 ${text(meshed.p50Ms)} p99 ${text(meshed.p99Ms)}; direct p50 ${text(direct.p50Ms)} p99 ${text(direct.p99Ms)}\n`,
  );
}
