// The agent's span exporter: spans nginx reported wait in a bounded queue and go to an OTLP
// collector in batches, one request at a time, over gRPC or HTTP. Tracing must never cost the
// traffic it observes: add() only queues (or drops, and counts, what does not fit), and every
// export runs in the background with a timeout and a bounded number of retries, so a collector
// that is down, slow or refusing loses spans, never time on the caller's path.
import { jitteredBackoffMs } from '../../backoff';
import type { Clock } from '../../clock';
import { systemClock } from '../../clock';
import { encodeExportTraceRequest } from './otlp-protobuf';
import type { InstrumentationScope } from './otlp-protobuf';
import { createOtlpTransport } from './otlp-transport';
import type { ExportOutcome, OtlpEndpoint, OtlpTransport } from './otlp-transport';
import type { MeshSpan, TraceResource } from './span';

export type { OtlpEndpoint } from './otlp-transport';

/** Spans held at most, queued or in flight: OpenTelemetry's batch processors' default. */
const DEFAULT_MAX_QUEUE = 2048;
/** Spans a request carries at most. */
const DEFAULT_MAX_BATCH = 512;
/** The longest a span that does not fill a batch waits before it is sent. */
const DEFAULT_FLUSH_INTERVAL_MS = 1_000;
/** The longest one request may take; OTLP exporters default to 10 s. */
const DEFAULT_TIMEOUT_MS = 10_000;
/** Requests for one batch before it is dropped. */
const DEFAULT_MAX_ATTEMPTS = 5;
/** The first wait before a retry; it doubles per failure up to DEFAULT_MAX_BACKOFF_MS. */
const DEFAULT_BACKOFF_MS = 500;
const DEFAULT_MAX_BACKOFF_MS = 5_000;
/** The longest wait a collector's Retry-After may ask for. */
const MAX_RETRY_AFTER_MS = 30_000;

export interface SpanExporterOptions {
  /** The collector; none: spans are dropped (and counted) until configure() names one. */
  readonly endpoint?: OtlpEndpoint;
  /** The pod's resource attributes (service.name, k8s.pod.name, ...). */
  readonly resource: TraceResource;
  readonly scope: InstrumentationScope;
  /** Spans held at most, queued or in flight (DEFAULT_MAX_QUEUE); add() drops what does not fit. */
  readonly maxQueue?: number;
  /** Spans a request carries at most (DEFAULT_MAX_BATCH); a full batch goes out at once. */
  readonly maxBatch?: number;
  /** How long spans that do not fill a batch wait (DEFAULT_FLUSH_INTERVAL_MS). */
  readonly flushIntervalMs?: number;
  /** The longest one request may take (DEFAULT_TIMEOUT_MS); also bounds stop()'s final flush. */
  readonly timeoutMs?: number;
  /** Requests for one batch, the first included (DEFAULT_MAX_ATTEMPTS). */
  readonly maxAttempts?: number;
  /** The first wait before a retry, doubled per failure (DEFAULT_BACKOFF_MS), jittered. */
  readonly backoffMs?: number;
  /** The longest wait before a retry (DEFAULT_MAX_BACKOFF_MS). */
  readonly maxBackoffMs?: number;
  /** Waits between flushes and before retries (systemClock). */
  readonly clock?: Clock;
  /** A number in [0, 1), for the backoff's jitter (Math.random). */
  readonly random?: () => number;
}

/** Counts since the exporter started. */
export interface SpanExporterStats {
  /** Spans the collector accepted. */
  readonly exported: number;
  /**
   * Spans given up on: past the queue's bound, malformed, added while export was off, in a
   * batch that failed, or queued when export was turned off or the exporter stopped.
   */
  readonly dropped: number;
  /** Batches dropped after a failure that retries did not mend. */
  readonly failedBatches: number;
  /** Spans held now, queued or in flight. */
  readonly queued: number;
  /** The latest failure, naming the collector. */
  readonly lastError?: string;
}

/** A batch taken from the queue; settled once exported or dropped, whichever comes first. */
interface Batch {
  readonly spans: readonly MeshSpan[];
  settled: boolean;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
const FIXED64_LIMIT = 2n ** 64n;

const isTime = (value: unknown): boolean =>
  typeof value === 'bigint' && value >= 0n && value < FIXED64_LIMIT;

/**
 * What makes a span one a collector would reject (OTLP: ids of 16 and 8 bytes, not all zero), or
 * undefined. Checked as batches are taken, so that one malformed span cannot fail the batch it
 * would join (a collector rejects a request as a whole).
 */
function spanProblem(span: MeshSpan): string | undefined {
  if (!TRACE_ID.test(span.traceId) || span.traceId === ZERO_TRACE_ID)
    return `trace id "${span.traceId}": expected 32 lowercase hex digits, not all zero`;
  if (!SPAN_ID.test(span.spanId) || span.spanId === ZERO_SPAN_ID)
    return `span id "${span.spanId}": expected 16 lowercase hex digits, not all zero`;
  if (span.parentSpanId !== undefined && !SPAN_ID.test(span.parentSpanId))
    return `parent span id "${span.parentSpanId}": expected 16 lowercase hex digits`;
  if (!isTime(span.startUnixNano) || !isTime(span.endUnixNano))
    return `times of span ${span.spanId}: expected nanoseconds in [0, 2^64)`;
  return undefined;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1)
    throw new RangeError(`invalid ${name} ${chosen}: expected an integer of at least 1`);
  return chosen;
}

const sameEndpoint = (a: OtlpEndpoint | undefined, b: OtlpEndpoint | undefined): boolean =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.host === b.host &&
    a.port === b.port &&
    a.protocol === b.protocol);

const describeEndpoint = (endpoint: OtlpEndpoint): string =>
  `OTLP/${endpoint.protocol} collector ${endpoint.host}:${endpoint.port}`;

/** Batches spans to an OTLP collector in the background; see the file's comment. */
export class SpanExporter {
  private endpoint: OtlpEndpoint | undefined;
  private resource: TraceResource;
  private readonly scope: InstrumentationScope;
  private readonly maxQueue: number;
  private readonly maxBatch: number;
  private readonly flushIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;

  private transport: OtlpTransport | undefined;
  private readonly pending: MeshSpan[] = [];
  /** The batch being exported, while it is. */
  private current: Batch | undefined;
  private exported = 0;
  private dropped = 0;
  private failedBatches = 0;
  private lastError: string | undefined;
  /** Spans ever queued, and of those how many were exported or dropped since: flush()'s marks. */
  private accepted = 0;
  private settled = 0;
  private waiters: { readonly target: number; readonly resolve: () => void }[] = [];
  /** Whether the queue goes out now whatever its size (the interval passed, or a flush). */
  private flushDue = false;
  /** Aborts the wait of the flush interval, while one runs. */
  private timer: AbortController | undefined;
  private draining: Promise<void> | undefined;
  /** Ends waits before retries early: the endpoint changed, or the exporter stops. */
  private wake = new AbortController();
  /** Aborts the request in flight: export was turned off, or stop's deadline passed. */
  private cancel = new AbortController();
  private stopped = false;
  private stopping: Promise<void> | undefined;

  constructor(options: SpanExporterOptions) {
    this.endpoint = options.endpoint;
    this.resource = options.resource;
    this.scope = options.scope;
    this.maxQueue = positiveInteger('maxQueue', options.maxQueue, DEFAULT_MAX_QUEUE);
    this.maxBatch = positiveInteger('maxBatch', options.maxBatch, DEFAULT_MAX_BATCH);
    this.flushIntervalMs = positiveInteger(
      'flushIntervalMs',
      options.flushIntervalMs,
      DEFAULT_FLUSH_INTERVAL_MS,
    );
    this.timeoutMs = positiveInteger('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.maxAttempts = positiveInteger('maxAttempts', options.maxAttempts, DEFAULT_MAX_ATTEMPTS);
    this.backoffMs = positiveInteger('backoffMs', options.backoffMs, DEFAULT_BACKOFF_MS);
    this.maxBackoffMs = positiveInteger(
      'maxBackoffMs',
      options.maxBackoffMs,
      DEFAULT_MAX_BACKOFF_MS,
    );
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  /**
   * Queues spans for export; never throws, never waits: a bounded copy of references, nothing
   * more (spans are checked when they are batched). Spans beyond the queue's bound, and any while
   * export is off or stopped, are dropped and counted.
   */
  add(spans: readonly MeshSpan[]): void {
    const taken =
      this.endpoint === undefined || this.stopped
        ? 0
        : Math.max(0, Math.min(spans.length, this.maxQueue - this.queued()));
    for (let index = 0; index < taken; index++) this.pending.push(spans[index] as MeshSpan);
    this.dropped += spans.length - taken;
    this.accepted += taken;
    if (this.pending.length >= this.maxBatch) this.kick();
    else if (this.pending.length > 0) this.armTimer();
  }

  /**
   * Sends to this endpoint from the next request on (a batch waiting to retry tries it at once),
   * with this resource from the next batch on. No endpoint turns export off: what is queued or
   * in flight is dropped and counted, and so is what is added until an endpoint is named again.
   */
  configure(endpoint: OtlpEndpoint | undefined, resource?: TraceResource): void {
    if (resource !== undefined) this.resource = resource;
    if (this.stopped || sameEndpoint(endpoint, this.endpoint)) return;
    this.endpoint = endpoint;
    this.transport?.close();
    this.transport = undefined;
    this.wake.abort();
    this.wake = new AbortController();
    if (endpoint === undefined) {
      this.timer?.abort();
      this.timer = undefined;
      this.discard('export turned off');
    }
  }

  /**
   * Resolves once every span queued before the call was exported or dropped: sends what is
   * queued now, whatever its size, waiting out the retries of a failing batch (bounded by
   * maxAttempts, timeoutMs and the backoff).
   */
  flush(): Promise<void> {
    const target = this.accepted;
    if (this.settled >= target) return Promise.resolve();
    this.flushDue = true;
    this.kick();
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }

  /**
   * Stops for good: flushes what is queued, each batch once, no retries, for at most timeoutMs;
   * drops and counts what is left; closes the connection. Later adds are dropped.
   */
  stop(): Promise<void> {
    this.stopping ??= this.finalFlush();
    return this.stopping;
  }

  stats(): SpanExporterStats {
    return {
      exported: this.exported,
      dropped: this.dropped,
      failedBatches: this.failedBatches,
      queued: this.queued(),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  private queued(): number {
    const inFlight =
      this.current === undefined || this.current.settled ? 0 : this.current.spans.length;
    return this.pending.length + inFlight;
  }

  private async finalFlush(): Promise<void> {
    this.stopped = true;
    this.timer?.abort();
    this.timer = undefined;
    this.wake.abort();
    const deadline = new AbortController();
    await Promise.race([
      this.flush(),
      this.clock.sleep(this.timeoutMs, deadline.signal).catch(() => undefined),
    ]);
    deadline.abort();
    this.discard(`exporter stopped with spans unsent after ${this.timeoutMs} ms`);
    await this.draining;
    this.transport?.close();
    this.transport = undefined;
  }

  /** Drops the queue and the batch in flight (aborting its request), counting them. */
  private discard(reason: string): void {
    const count = this.queued();
    if (count === 0) return;
    this.pending.length = 0;
    if (this.current !== undefined) this.current.settled = true;
    this.cancel.abort(new Error(reason));
    this.cancel = new AbortController();
    this.dropped += count;
    this.settle(count);
  }

  private settle(count: number): void {
    this.settled += count;
    const ready = this.waiters.filter((waiter) => waiter.target <= this.settled);
    this.waiters = this.waiters.filter((waiter) => waiter.target > this.settled);
    for (const waiter of ready) waiter.resolve();
  }

  /** Flushes after the interval; one wait at a time, started by the first span of a queue. */
  private armTimer(): void {
    if (this.timer !== undefined || this.stopped) return;
    const timer = new AbortController();
    this.timer = timer;
    this.clock.sleep(this.flushIntervalMs, timer.signal).then(
      () => {
        if (this.timer !== timer) return;
        this.timer = undefined;
        this.flushDue = true;
        this.kick();
      },
      () => undefined,
    );
  }

  /**
   * Starts draining unless it runs. It starts once the caller's synchronous code is done, so
   * that spans added together go out together.
   */
  private kick(): void {
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
      if (this.pending.length >= this.maxBatch || (this.flushDue && this.pending.length > 0))
        this.kick();
      else if (this.pending.length > 0) this.armTimer();
    });
  }

  /** Sends full batches, and when a flush is due everything queued, one request at a time. */
  private async drain(): Promise<void> {
    await Promise.resolve();
    while (
      this.endpoint !== undefined &&
      this.pending.length > 0 &&
      (this.flushDue || this.pending.length >= this.maxBatch)
    ) {
      const batch = this.takeBatch();
      if (batch.spans.length === 0) continue;
      this.current = batch;
      await this.exportBatch(batch);
      this.current = undefined;
    }
    if (this.pending.length === 0) this.flushDue = false;
  }

  /** The next batch from the queue, less the spans a collector would reject (dropped, counted). */
  private takeBatch(): Batch {
    const taken = this.pending.splice(0, this.maxBatch);
    const spans = taken.filter((span) => {
      const problem = spanProblem(span);
      if (problem !== undefined) this.lastError = `span dropped: ${problem}`;
      return problem === undefined;
    });
    const malformed = taken.length - spans.length;
    if (malformed > 0) {
      this.dropped += malformed;
      this.settle(malformed);
    }
    return { spans, settled: false };
  }

  /** Sends a batch until it is accepted, fails for good, runs out of attempts or is dropped. */
  private async exportBatch(batch: Batch): Promise<void> {
    for (let attempt = 1; !batch.settled; attempt++) {
      const endpoint = this.endpoint;
      if (endpoint === undefined) return;
      const outcome = await this.send(endpoint, batch);
      if (batch.settled) return;
      if (outcome.ok) {
        this.finish(batch, true);
        return;
      }
      this.lastError = `${describeEndpoint(endpoint)}: ${outcome.error}`;
      if (!outcome.retryable || attempt >= this.maxAttempts || this.stopped) {
        this.failedBatches += 1;
        this.finish(batch, false);
        return;
      }
      await this.clock
        .sleep(this.retryWaitMs(attempt, outcome), this.wake.signal)
        .catch(() => undefined);
    }
  }

  private retryWaitMs(attempt: number, outcome: ExportOutcome): number {
    const backoff = jitteredBackoffMs(
      attempt - 1,
      this.random(),
      this.backoffMs,
      this.maxBackoffMs,
    );
    const asked = outcome.ok ? undefined : outcome.retryAfterMs;
    return asked === undefined ? backoff : Math.max(backoff, Math.min(asked, MAX_RETRY_AFTER_MS));
  }

  private finish(batch: Batch, exported: boolean): void {
    batch.settled = true;
    if (exported) this.exported += batch.spans.length;
    else this.dropped += batch.spans.length;
    this.settle(batch.spans.length);
  }

  /** One request for a batch, bounded by timeoutMs and aborted by discard(). */
  private async send(endpoint: OtlpEndpoint, batch: Batch): Promise<ExportOutcome> {
    this.transport ??= createOtlpTransport(endpoint);
    const body = encodeExportTraceRequest(this.resource, this.scope, batch.spans);
    const request = new AbortController();
    const cancel = this.cancel.signal;
    const onCancel = (): void => request.abort(cancel.reason);
    cancel.addEventListener('abort', onCancel, { once: true });
    // A network deadline, not a schedule: the injected clock paces flushes and retries only.
    const timeout = setTimeout(
      () => request.abort(new Error(`no answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    timeout.unref();
    try {
      return await this.transport.send(body, request.signal);
    } finally {
      clearTimeout(timeout);
      cancel.removeEventListener('abort', onCancel);
    }
  }
}
