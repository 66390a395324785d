import type { Clock } from '../../src/runtime/clock';
import type { RawResponse } from '../../src/runtime/kube/access';
import type { KubeObject } from '../../src/runtime/kube/client';
import type { WatchUpdate } from '../../src/runtime/kube/watch';
import { backoffDelayMs, startWatch } from '../../src/runtime/kube/watch';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { SeenRequest } from '../support/fake-kube';
import { kubeScripted, okJson, statusAnswer } from '../support/fake-kube';
import { heldOpen } from '../support/fakes';

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let round = 0; round < 200 && !condition(); round += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!condition()) throw new Error('condition not met within 200 rounds');
}

const PATH = '/api/v1/services';

function svc(name: string, resourceVersion: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop', resourceVersion },
  };
}

function list(items: KubeObject[], resourceVersion: string): RawResponse {
  return okJson({ kind: 'ServiceList', metadata: { resourceVersion }, items });
}

function events(...lines: unknown[]): RawResponse {
  return { status: 200, body: lines.map((line) => JSON.stringify(line)).join('\n') };
}

/** A clock whose sleeps are recorded and end at once. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => new Date('2026-01-02T03:04:05.000Z'),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  };
}

function recordingLogger(): { logger: ReturnType<typeof createJsonLogger>; lines: () => string[] } {
  const written: string[] = [];
  return {
    logger: createJsonLogger({
      level: 'debug',
      out: { write: (text) => void written.push(text) },
      now: () => new Date(0),
    }),
    lines: () => written.map((text) => (JSON.parse(text) as { msg: string }).msg),
  };
}

/**
 * Answers requests from a script in order; once it runs out, watches hang until stopped and
 * `idle` resolves.
 */
function scripted(script: ((request: SeenRequest) => RawResponse)[]): {
  fake: ReturnType<typeof kubeScripted>;
  idle: Promise<void>;
} {
  let reachEnd: () => void = () => undefined;
  const idle = new Promise<void>((resolve) => (reachEnd = resolve));
  const fake = kubeScripted((request) => {
    const next = script.shift();
    if (next !== undefined) return next(request);
    reachEnd();
    return new Promise<RawResponse>(() => undefined);
  });
  return { fake, idle };
}

function watched(fake: ReturnType<typeof kubeScripted>, clock = recordingClock()) {
  const updates: WatchUpdate<KubeObject>[] = [];
  const log = recordingLogger();
  const watch = startWatch<KubeObject>(fake.connection, {
    path: PATH,
    onUpdate: (update) => updates.push(update),
    clock,
    random: () => 0.5,
    logger: log.logger,
    timeoutSeconds: 60,
  });
  return { watch, updates, clock, log };
}

const summary = (updates: WatchUpdate<KubeObject>[]): string[] =>
  updates.map((update) =>
    update.type === 'SYNC'
      ? `SYNC ${update.items.map((item) => item.metadata?.name ?? '').join(',')}`
      : `${update.type} ${update.object.metadata?.name ?? ''}`,
  );

describe('startWatch', () => {
  it('lists, then watches from the list version with bookmarks and a server timeout', async () => {
    const { fake, idle } = scripted([
      () => list([svc('web', '3')], '5'),
      () =>
        events(
          { type: 'ADDED', object: svc('db', '6') },
          { type: 'BOOKMARK', object: { kind: 'Service', metadata: { resourceVersion: '8' } } },
        ),
    ]);
    const { watch, updates } = watched(fake);
    await idle;
    expect(watch.synced()).toBe(true);
    await watch.stop();
    expect(summary(updates)).toEqual(['SYNC web', 'ADDED db']);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET ${PATH}?limit=500`,
      `WATCH ${PATH}?watch=1&resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=60`,
      `WATCH ${PATH}?watch=1&resourceVersion=8&allowWatchBookmarks=true&timeoutSeconds=60`,
    ]);
  });

  it('lists again when the watch sends an ERROR event with code 410', async () => {
    const { fake, idle } = scripted([
      () => list([svc('web', '3')], '5'),
      () =>
        events(
          { type: 'MODIFIED', object: svc('web', '6') },
          { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } },
          { type: 'ADDED', object: svc('ignored-after-error', '7') },
        ),
      () => list([svc('db', '9')], '10'),
    ]);
    const { watch, updates } = watched(fake);
    await idle;
    await watch.stop();
    expect(summary(updates)).toEqual(['SYNC web', 'MODIFIED web', 'SYNC db']);
    expect(fake.requests.map((r) => r.path)).toEqual([
      `${PATH}?limit=500`,
      `${PATH}?watch=1&resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=60`,
      `${PATH}?limit=500`,
      `${PATH}?watch=1&resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds=60`,
    ]);
  });

  it('lists again when the watch is answered with HTTP 410 Gone', async () => {
    const { fake, idle } = scripted([
      () => list([svc('web', '3')], '5'),
      () => statusAnswer(410, 'Expired', 'too old resource version: 5 (12)'),
      () => list([], '12'),
    ]);
    const { watch, updates } = watched(fake);
    await idle;
    await watch.stop();
    expect(summary(updates)).toEqual(['SYNC web', 'SYNC ']);
    expect(fake.requests.at(-1)?.path).toContain('resourceVersion=12');
  });

  it('keeps its version and backs off, doubling up to 5 s, while the watch keeps failing', async () => {
    const failing = Array.from(
      { length: 12 },
      () => () => statusAnswer(500, 'InternalError', 'etcd is unavailable'),
    );
    const { fake, idle } = scripted([() => list([svc('web', '3')], '5'), ...failing]);
    const { watch, clock, log } = watched(fake);
    await idle;
    await watch.stop();
    // random() = 0.5: three quarters of each ceiling (250 ms doubled, capped at 5 s), so the
    // first watch after an API server's return waits at most 5 s.
    expect(clock.sleeps).toEqual([
      188, 375, 750, 1500, 3000, 3750, 3750, 3750, 3750, 3750, 3750, 3750,
    ]);
    const watches = fake.requests.filter((r) => r.method === 'WATCH');
    expect(watches.every((r) => r.path.includes('resourceVersion=5'))).toBe(true);
    expect(log.lines().filter((msg) => msg === 'watch failed; reconnecting')).toHaveLength(12);
  });

  it('reconnects at once after a healthy watch ends, and resets the backoff', async () => {
    const { fake, idle } = scripted([
      () => list([], '5'),
      () => statusAnswer(503, 'ServiceUnavailable', 'shutting down'),
      () => statusAnswer(503, 'ServiceUnavailable', 'shutting down'),
      () => events({ type: 'ADDED', object: svc('web', '6') }),
      () => statusAnswer(503, 'ServiceUnavailable', 'shutting down'),
    ]);
    const { watch, clock } = watched(fake);
    await idle;
    await watch.stop();
    expect(clock.sleeps).toEqual([188, 375, 188]);
  });

  it('renews a quiet watch the server held open at once, however many in a row', async () => {
    const quiet = (): RawResponse => events();
    const { fake, idle } = scripted([() => list([], '5'), quiet, quiet, quiet, quiet, quiet]);
    // Each watch stays open a minute (its timeoutSeconds) and ends without an event.
    let at = Date.parse('2026-01-02T03:04:05.000Z');
    const clock = recordingClock();
    const { watch, log } = watched(fake, {
      ...clock,
      now: () => new Date((at += 60_000)),
    });
    await idle;
    await watch.stop();
    expect(clock.sleeps).toEqual([]);
    expect(watch.failure()).toBeUndefined();
    expect(log.lines()).not.toContain('watch failed; reconnecting');
  });

  it('says why and since when it has been failing, until a list answers again', async () => {
    const { fake, idle } = scripted([
      () => statusAnswer(503, 'ServiceUnavailable', 'etcd is down'),
      () => statusAnswer(503, 'ServiceUnavailable', 'etcd is down'),
    ]);
    const { watch } = watched(fake);
    await idle;
    expect(watch.failure()?.error).toContain('etcd is down');
    expect(watch.failure()?.sinceMs).toBe(Date.parse('2026-01-02T03:04:05.000Z'));
    await watch.stop();
    const recovered = scripted([
      () => statusAnswer(503, 'ServiceUnavailable', 'etcd is down'),
      () => list([], '5'),
    ]);
    const second = watched(recovered.fake);
    await recovered.idle;
    expect(second.watch.failure()).toBeUndefined();
    await second.watch.stop();
  });

  it('follows the cluster again as soon as a watch is accepted, not when it ends', async () => {
    const { fake } = scripted([
      () => list([], '5'),
      () => statusAnswer(503, 'ServiceUnavailable', 'etcd is down'),
      () => statusAnswer(503, 'ServiceUnavailable', 'etcd is down'),
      () => heldOpen(),
    ]);
    const { watch } = watched(fake);
    await waitUntil(() => fake.requests.length === 4);
    // The watch is open and quiet: nothing has ended it, yet it follows the cluster.
    await new Promise((resolve) => setImmediate(resolve));
    expect(watch.failure()).toBeUndefined();
    await watch.stop();
  });

  it('treats a collection that is not served as empty, retries it and logs that once', async () => {
    const notFound = () => statusAnswer(404, 'NotFound', 'the server could not find the resource');
    const { fake, idle } = scripted([
      notFound,
      notFound,
      notFound,
      () => list([svc('web', '3')], '5'),
    ]);
    const { watch, updates, clock, log } = watched(fake);
    await idle;
    await watch.stop();
    expect(summary(updates)).toEqual(['SYNC ', 'SYNC web']);
    expect(clock.sleeps).toEqual([188, 375, 750]);
    expect(log.lines().filter((msg) => msg.includes('not served yet'))).toHaveLength(1);
    expect(log.lines()).toContain('resource type is served now');
  });

  it('is not synced before its first list answers', async () => {
    const { fake } = scripted([]);
    const { watch, updates } = watched(fake);
    expect(watch.synced()).toBe(false);
    await watch.stop();
    expect(updates).toEqual([]);
  });
});

describe('backoffDelayMs', () => {
  it('stays within the upper half of a ceiling that doubles and never exceeds the bound', () => {
    for (let failures = 0; failures < 64; failures += 1) {
      const ceiling = Math.min(5_000, 250 * 2 ** failures);
      expect(backoffDelayMs(failures, () => 0)).toBe(ceiling / 2);
      expect(backoffDelayMs(failures, () => 0.999999)).toBeLessThanOrEqual(5_000);
      expect(backoffDelayMs(failures, () => 0.999999)).toBeGreaterThan(ceiling * 0.99);
    }
  });
});
