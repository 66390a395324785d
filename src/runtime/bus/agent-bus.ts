// The agent's side of the configuration bus. The agent holds one snapshot and its generation;
// a delta whose base is that generation moves it forward, a stale one (generation not above the
// held one) is dropped, and anything else (no snapshot yet, a missed delta, a reconnect, a ping
// from a new controller) makes it ask the controller for the whole snapshot, again and again
// with a bounded backoff while no controller answers.
//
// Applying (rendering nginx.conf, nginx -t, reload) is slow next to the bus: applies never
// overlap, and while one runs only the newest snapshot waits, so a burst of changes costs one
// reload. Every generation handed to apply is acked, with the error when it failed. The held
// generation moves on even when apply fails: the data is right, its rendering was not, and the
// next delta still builds on it.
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { Events } from 'nats';
import { NATS_CONFIG_SUBJECT, NATS_PING_SUBJECT } from '../../manifests/constants';
import { applyDeltaInPlace, changesRendering } from '../../manifests/snapshot/delta';
import type {
  AckMessage,
  DeltaMessage,
  DownMessage,
  SubscribeMessage,
} from '../../manifests/snapshot/messages';
import { parseDownMessage } from '../../manifests/snapshot/messages';
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import { jitteredBackoffMs } from '../backoff';
import type { Logger } from '../role/log';
import { CONTENT_ENCODING_HEADER, GZIP } from './controller-bus';

const decompress = promisify(gunzip);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface AgentBus {
  /** The generation of the last snapshot apply finished with (applied or failed). */
  generation(): number | undefined;
  /** Stops listening and waits for a running apply; the connection stays open. */
  close(): Promise<void>;
}

export interface AgentBusOptions {
  /** "<namespace>/<pod name>". */
  readonly pod: string;
  /** Where subscribe requests and acks go: the agent identity's own subject (nats-config.ts). */
  readonly subject: string;
  readonly version: string;
  readonly logger: Logger;
  /**
   * Applies a snapshot; resolves to an error message, or undefined when it was applied.
   * unrendered: since the snapshot last handed over, only collections the renderer does not
   * read changed (UNRENDERED_COLLECTIONS), so the nginx configuration stays what it was.
   */
  apply(
    snapshot: MeshSnapshot,
    generation: number,
    unrendered: boolean,
  ): Promise<string | undefined>;
}

/** How long a subscribe request waits for the controller's answer. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Backoff between unanswered subscribe requests: doubles from the first to the last, jittered. */
const FIRST_RETRY_MS = 200;
const LAST_RETRY_MS = 5_000;

interface Held {
  readonly snapshot: MeshSnapshot;
  readonly generation: number;
  /** Whether only unrendered collections changed since the snapshot held before it. */
  readonly unrendered: boolean;
}

/** Subscribes to configuration and pings, then asks for the current snapshot. */
export async function startAgentBus(
  nc: NatsConnection,
  options: AgentBusOptions,
): Promise<AgentBus> {
  const logger = options.logger.with({ component: 'agent-bus', pod: options.pod });
  let closed = false;
  let held: Held | undefined;
  let applied: number | undefined;
  let running: Promise<void> | undefined;
  let waiting: Held | undefined;
  // Resynchronisation: one loop at a time; a new reason while it runs asks it for another round.
  let resyncing = false;
  let resyncWanted = false;
  let wake: (() => void) | undefined;
  /** Deltas that arrive while a subscribe request is out, replayed once it is answered. */
  let inFlight = false;
  let deferred: DeltaMessage[] = [];

  const ack = (generation: number, error: string | undefined): void => {
    const message: AckMessage = {
      kind: 'ack',
      pod: options.pod,
      generation,
      ...(error === undefined ? {} : { error }),
    };
    if (!nc.isClosed()) nc.publish(options.subject, encoder.encode(JSON.stringify(message)));
  };

  const run = async (next: Held): Promise<void> => {
    let error: string | undefined;
    try {
      error = await options.apply(next.snapshot, next.generation, next.unrendered);
    } catch (thrown) {
      error = thrown instanceof Error ? thrown.message : String(thrown);
    }
    applied = next.generation;
    if (error !== undefined) {
      logger.warn('could not apply a generation', { generation: next.generation, error });
    }
    ack(next.generation, error);
  };

  const schedule = (next: Held): void => {
    if (running !== undefined) {
      // Replacing a snapshot that never ran: what it changed is still to be rendered.
      waiting = { ...next, unrendered: next.unrendered && (waiting?.unrendered ?? true) };
      return;
    }
    running = (async () => {
      let current: Held | undefined = next;
      while (current !== undefined) {
        await run(current);
        current = waiting;
        waiting = undefined;
      }
      running = undefined;
    })();
  };

  const hold = (next: Held): void => {
    if (closed) return;
    held = next;
    schedule(next);
  };

  const resync = (reason: string): void => {
    if (closed) return;
    resyncWanted = true;
    if (resyncing) {
      wake?.();
      return;
    }
    logger.debug('asking for the whole snapshot', { reason });
    resyncing = true;
    void resyncLoop().finally(() => {
      resyncing = false;
      // A reason that came after the loop's last check.
      if (resyncWanted && !closed) resync('asked again');
    });
  };

  const onDelta = (delta: DeltaMessage): void => {
    if (held !== undefined && delta.generation <= held.generation) return;
    if (inFlight) {
      deferred.push(delta);
      return;
    }
    if (held === undefined || delta.base !== held.generation) {
      resync(
        `delta ${delta.generation} builds on ${delta.base}, held ${held?.generation ?? 'none'}`,
      );
      return;
    }
    // The held copy is the agent's own (parsed from the wire): changed in place, a delta costs
    // its own size, not the mesh's. A render reads it synchronously at the start of an apply.
    hold({
      snapshot: applyDeltaInPlace(held.snapshot, delta),
      generation: delta.generation,
      unrendered: !changesRendering(delta),
    });
  };

  /** Asks for the whole snapshot once; deltas arriving meanwhile wait for the answer. */
  const requestFull = async (): Promise<boolean> => {
    inFlight = true;
    try {
      return await askOnce();
    } finally {
      inFlight = false;
      const replay = deferred;
      deferred = [];
      for (const delta of replay) onDelta(delta);
    }
  };

  const askOnce = async (): Promise<boolean> => {
    const request: SubscribeMessage = {
      kind: 'subscribe',
      pod: options.pod,
      version: options.version,
      // What runs, not what was received: the controller counts this agent current on it, and a
      // generation still being applied is not running yet.
      ...(applied === undefined ? {} : { generation: applied }),
    };
    let reply: Msg;
    try {
      reply = await nc.request(options.subject, encoder.encode(JSON.stringify(request)), {
        timeout: REQUEST_TIMEOUT_MS,
      });
    } catch (error) {
      logger.debug('no answer to a subscribe request', { error });
      return false;
    }
    const message = await readReply(reply);
    if (message === undefined) return false;
    if (message.kind === 'ping') {
      // A ping of the generation held: the agent is current. Of generation 0: the controller
      // has no snapshot yet and will ping when it has one.
      if (held !== undefined && message.generation === held.generation) return true;
      logger.debug('the controller has no snapshot for this agent yet', {
        generation: message.generation,
      });
      return false;
    }
    if (message.kind !== 'full') {
      logger.warn('ignored a reply that is not a full snapshot', { kind: message.kind });
      return false;
    }
    if (held === undefined || message.generation > held.generation) {
      hold({ snapshot: message.snapshot, generation: message.generation, unrendered: false });
    }
    return true;
  };

  const readReply = async (reply: Msg): Promise<DownMessage | undefined> => {
    let text: string;
    try {
      text =
        reply.headers?.get(CONTENT_ENCODING_HEADER) === GZIP
          ? decoder.decode(await decompress(reply.data))
          : decoder.decode(reply.data);
    } catch (error) {
      logger.warn('ignored a reply that does not decompress', { error });
      return undefined;
    }
    const parsed = parseDownMessage(text);
    if ('refused' in parsed) {
      logger.warn('ignored a malformed reply', { reason: parsed.refused });
      return undefined;
    }
    return parsed.message;
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function resyncLoop(): Promise<void> {
    let failures = 0;
    while (resyncWanted && !closed) {
      resyncWanted = false;
      if (await requestFull()) {
        failures = 0;
        continue;
      }
      if (closed) break;
      resyncWanted = true;
      // A new reason to ask (a ping, a reconnect) cuts the wait short.
      await sleep(jitteredBackoffMs(failures, Math.random(), FIRST_RETRY_MS, LAST_RETRY_MS));
      failures += 1;
    }
  }

  const onDown = (subject: string, msg: Msg): void => {
    if (closed) return;
    const parsed = parseDownMessage(decoder.decode(msg.data));
    if ('refused' in parsed) {
      logger.warn('ignored a malformed bus message', { subject, reason: parsed.refused });
      return;
    }
    const message = parsed.message;
    if (message.kind === 'delta') onDelta(message);
    else if (message.kind === 'ping') resync(`ping from a controller at ${message.generation}`);
    else logger.warn('ignored a full snapshot that was not asked for', { subject });
  };

  const listen = (subject: string): Subscription =>
    nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error !== null) logger.warn('subscription error', { subject, error });
        else onDown(subject, msg);
      },
    });
  const subscriptions = [listen(NATS_CONFIG_SUBJECT), listen(NATS_PING_SUBJECT)];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === Events.Reconnect) resync('reconnected');
    }
  })();
  await nc.flush();
  resync('started');

  return {
    generation: () => applied,
    close: async () => {
      closed = true;
      wake?.();
      for (const subscription of subscriptions) subscription.unsubscribe();
      await running;
    },
  };
}
