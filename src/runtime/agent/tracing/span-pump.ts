// Moves the spans nginx records (ngx_mesh's mesh_trace zone) to the exporter: while the mesh
// traces, the agent takes the zone over nginx's stats socket four times a second, reads the span
// lines and hands them on. nginx's zone is the bound: what does not fit there is counted by nginx
// as dropped, and the take reports it. Lines the exporter has no room for are counted as dropped
// without being read, so a collector that cannot keep up costs the agent no more CPU than one
// that can. A take that fails (nginx restarting) leaves the spans in nginx for the next.
import { takeFromNginx } from '../metrics/sidecar-metrics';
import { parseSpanTake, toMeshSpan } from './nginx-spans';
import type { MeshSpan } from './span';

/**
 * How often spans are taken while tracing is on: often enough that a busy sidecar's spans of one
 * interval (a few thousand a second) fit the exporter's queue.
 */
export const SPAN_TAKE_INTERVAL_MS = 250;

export interface SpanPumpOptions {
  /** nginx's stats socket. */
  readonly socketPath: string;
  /** The location of mesh_trace_dump. */
  readonly path: string;
  readonly add: (spans: readonly MeshSpan[]) => void;
  /** Spans the receiver can take now; the rest of a take is dropped unread. */
  readonly room?: () => number;
  readonly intervalMs?: number;
}

export interface SpanPumpStats {
  /** Spans taken from nginx and handed on. */
  readonly taken: number;
  /** Spans nginx could not record: its zone was full between two takes. */
  readonly droppedInNginx: number;
  /** Span lines that could not be read. */
  readonly unreadable: number;
  /** Spans dropped unread: the receiver had no room for them. */
  readonly noRoom: number;
}

export interface SpanPump {
  /** Starts or stops taking; a stop takes once more, so that no recorded span is left behind. */
  setActive(active: boolean): void;
  /** One take now; false when nginx did not answer. */
  take(): Promise<boolean>;
  stats(): SpanPumpStats;
  close(): Promise<void>;
}

export function startSpanPump(options: SpanPumpOptions): SpanPump {
  let taken = 0;
  let droppedInNginx = 0;
  let unreadable = 0;
  let noRoom = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;

  const takeOnce = async (): Promise<boolean> => {
    const body = await takeFromNginx(options.socketPath, options.path);
    if (body === undefined) return false;
    const { text, skipped } = withRoom(body, options.room?.() ?? Number.POSITIVE_INFINITY);
    noRoom += skipped;
    const take = parseSpanTake(text);
    droppedInNginx += take.dropped;
    unreadable += take.unreadable;
    if (take.spans.length > 0) {
      taken += take.spans.length;
      options.add(take.spans.map(toMeshSpan));
    }
    return true;
  };
  const take = (): Promise<boolean> =>
    (running ??= takeOnce().finally(() => {
      running = undefined;
    }));

  return {
    setActive(active) {
      if (active && timer === undefined) {
        timer = setInterval(() => void take(), options.intervalMs ?? SPAN_TAKE_INTERVAL_MS);
        timer.unref();
      } else if (!active && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
        void take();
      }
    },
    take,
    stats: () => ({ taken, droppedInNginx, unreadable, noRoom }),
    async close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}

/** The take cut to its header and the first room span lines; how many lines were cut. */
export function withRoom(text: string, room: number): { text: string; skipped: number } {
  let end = text.indexOf('\n');
  if (end === -1) return { text, skipped: 0 };
  for (let kept = 0; kept < room; kept += 1) {
    const next = text.indexOf('\n', end + 1);
    if (next === -1) return { text, skipped: 0 };
    end = next;
  }
  let skipped = 0;
  for (let at = text.indexOf('\n', end + 1); at !== -1; at = text.indexOf('\n', at + 1)) {
    skipped += 1;
  }
  return { text: text.slice(0, end + 1), skipped };
}
