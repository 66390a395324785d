// What a hostile tenant runs from inside the cluster's network: bundled once by the tier and
// started in a pod's network namespace, it reads one JSON request from its first argument, acts
// it out against the mesh's servers and prints one JSON line with what it saw. Every request is
// bounded in count and time, and the process ends once it printed.
//   svid   many SVID requests to the registrar with a token and a CSR: statuses, issued IDs
//   nats   one NATS connection (with or without a client certificate) and a list of steps:
//          publish, request, subscribe; records what NATS refused and what arrived
//   http   one HTTP request: the status, or the error code
import { request as httpsRequest } from 'node:https';
import { connect } from 'nats';
import type { NatsConnection, Subscription } from 'nats';

export interface SvidProbe {
  readonly kind: 'svid';
  readonly url: string;
  readonly token: string;
  readonly csrPem: string;
  readonly count: number;
  readonly concurrency: number;
  readonly deadlineMs: number;
}

export interface SvidProbeResult {
  /** Answers per status ("200", "403", "error ECONNRESET", "deadline"). */
  readonly statuses: Record<string, number>;
  /** SPIFFE IDs of the certificates issued, once each. */
  readonly issued: readonly string[];
  /** The first refusal's body. */
  readonly firstRefusal?: string;
  readonly ms: number;
}

/** One step on a NATS connection. */
export type NatsStep =
  /** Publishes repeat messages (data, or data with ${i} replaced by the index). */
  | {
      readonly op: 'publish';
      readonly subject: string;
      readonly data: string;
      readonly reply?: string;
      readonly repeat?: number;
    }
  /** A request on subject; records whether and how it was answered. */
  | { readonly op: 'request'; readonly subject: string; readonly data: string }
  /** Subscribes; records what arrives until the connection closes. */
  | { readonly op: 'subscribe'; readonly subject: string };

export interface NatsProbe {
  readonly kind: 'nats';
  readonly server: string;
  /** PEM of the client certificate chain and key; without it, no client certificate. */
  readonly certPem?: string;
  readonly keyPem?: string;
  readonly caPem: string;
  readonly steps: readonly NatsStep[];
  /** How long to listen after the last step. */
  readonly settleMs: number;
  readonly deadlineMs: number;
}

export interface NatsStepResult {
  readonly op: NatsStep['op'];
  readonly subject: string;
  /** NATS refused it ("Permissions Violation for Publish to …"). */
  readonly refused?: string;
  /** Messages received on a subscription, or 1 for an answered request. */
  readonly received: number;
  /** A request's answer: its first 200 characters, or the error. */
  readonly answer?: string;
  readonly published?: number;
  readonly ms: number;
}

export interface NatsProbeResult {
  /** The connection failed: why. */
  readonly connectError?: string;
  readonly steps: readonly NatsStepResult[];
}

export interface HttpProbe {
  readonly kind: 'http';
  readonly url: string;
  readonly method: string;
  readonly timeoutMs: number;
}

export interface HttpProbeResult {
  /** "200", "403", or "error ECONNREFUSED". */
  readonly outcome: string;
  readonly body: string;
}

export type Probe = SvidProbe | NatsProbe | HttpProbe;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function svidOnce(probe: SvidProbe): Promise<{ status: string; body: string }> {
  const body = JSON.stringify({ csr: probe.csrPem });
  return new Promise((resolve) => {
    const req = httpsRequest(
      new URL('/v1/svid', probe.url),
      {
        method: 'POST',
        // The attacker does not care who answers; it wants a certificate.
        rejectUnauthorized: false,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Authorization: `Bearer ${probe.token}`,
        },
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: String(res.statusCode),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (error) => resolve({ status: `error ${error.name}`, body: '' }));
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ status: `error ${error.code ?? error.name}`, body: '' }),
    );
    req.end(body);
  });
}

async function runSvid(probe: SvidProbe): Promise<SvidProbeResult> {
  const started = Date.now();
  const statuses: Record<string, number> = {};
  const issued = new Set<string>();
  let firstRefusal: string | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < probe.count) {
      next += 1;
      if (Date.now() - started > probe.deadlineMs) {
        statuses.deadline = (statuses.deadline ?? 0) + 1;
        continue;
      }
      const { status, body } = await svidOnce(probe);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === '200') {
        const id = (JSON.parse(body) as { spiffeId?: string }).spiffeId;
        if (id !== undefined) issued.add(id);
      } else firstRefusal ??= `${status} ${body.slice(0, 300)}`;
    }
  };
  await Promise.all(Array.from({ length: probe.concurrency }, worker));
  return {
    statuses,
    issued: [...issued],
    ...(firstRefusal === undefined ? {} : { firstRefusal }),
    ms: Date.now() - started,
  };
}

interface Watched {
  readonly step: NatsStep;
  readonly started: number;
  received: number;
  published?: number;
  answer?: string;
  sub?: Subscription;
}

/** Steps run one after the other; a permission error NATS reports later is matched by subject. */
async function runNats(probe: NatsProbe): Promise<NatsProbeResult> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [probe.server],
      timeout: 5_000,
      reconnect: false,
      tls: {
        ca: probe.caPem,
        ...(probe.certPem === undefined ? {} : { cert: probe.certPem, key: probe.keyPem }),
        // SVIDs name workloads by SPIFFE ID, not by the address dialled.
        checkServerIdentity: () => undefined,
      } as never,
    });
    // The server closes a connection it refuses right after the handshake.
    await nc.flush();
  } catch (error) {
    return { connectError: (error as Error).message, steps: [] };
  }
  const refusals: { subject: string; operation: string; text: string }[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      const context = (status as { permissionContext?: { operation: string; subject: string } })
        .permissionContext;
      if (context !== undefined)
        refusals.push({
          subject: context.subject,
          operation: context.operation,
          text: `Permissions Violation for ${context.operation} to ${context.subject}`,
        });
    }
  })();
  const watched: Watched[] = [];
  for (const step of probe.steps) {
    const entry: Watched = { step, started: Date.now(), received: 0 };
    watched.push(entry);
    if (step.op === 'subscribe') {
      entry.sub = nc.subscribe(step.subject, {
        callback: (error) => {
          if (error === null) entry.received += 1;
        },
      });
    } else if (step.op === 'publish') {
      const repeat = step.repeat ?? 1;
      for (let index = 0; index < repeat && Date.now() - entry.started < probe.deadlineMs;) {
        nc.publish(
          step.subject,
          encoder.encode(step.data.replaceAll('${i}', String(index))),
          step.reply === undefined ? {} : { reply: step.reply },
        );
        index += 1;
        entry.published = index;
        // Lets the socket drain now and then, so a large flood stays within memory.
        if (index % 1_000 === 0) await nc.flush();
      }
    } else {
      try {
        const reply = await nc.request(step.subject, encoder.encode(step.data), { timeout: 3_000 });
        entry.received = 1;
        const gzip = reply.headers?.get('Content-Encoding') === 'gzip';
        entry.answer = gzip ? '(a gzip-compressed snapshot)' : decoder.decode(reply.data);
      } catch (error) {
        entry.answer = `error ${(error as Error).message}`;
      }
    }
    await nc.flush().catch(() => undefined);
  }
  await new Promise((resolve) => setTimeout(resolve, probe.settleMs));
  const results = watched.map((entry): NatsStepResult => {
    const operation = entry.step.op === 'subscribe' ? 'subscription' : 'publish';
    const refusal = refusals.find(
      (each) => each.subject === entry.step.subject && each.operation === operation,
    );
    return {
      op: entry.step.op,
      subject: entry.step.subject,
      ...(refusal === undefined ? {} : { refused: refusal.text }),
      received: entry.received,
      ...(entry.answer === undefined ? {} : { answer: entry.answer.slice(0, 200) }),
      ...(entry.published === undefined ? {} : { published: entry.published }),
      ms: Date.now() - entry.started,
    };
  });
  await nc.close().catch(() => undefined);
  return { steps: results };
}

async function runHttp(probe: HttpProbe): Promise<HttpProbeResult> {
  try {
    const response = await fetch(probe.url, {
      method: probe.method,
      signal: AbortSignal.timeout(probe.timeoutMs),
    });
    return { outcome: String(response.status), body: (await response.text()).slice(0, 300) };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return { outcome: `error ${cause?.code ?? (error as Error).name}`, body: '' };
  }
}

export function runProbe(probe: Probe): Promise<unknown> {
  switch (probe.kind) {
    case 'svid':
      return runSvid(probe);
    case 'nats':
      return runNats(probe);
    case 'http':
      return runHttp(probe);
  }
}

if (require.main === module) {
  const [input = '{}'] = process.argv.slice(2);
  runProbe(JSON.parse(input) as Probe).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`probe failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
