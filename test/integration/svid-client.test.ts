// The SVID client against the registrar's own issuing code and HTTPS API on loopback, through
// the registrar's outages: it retries from its first attempt, reports an SVID that expired
// while the registrar was away (without hammering it meanwhile), renews as soon as it is back,
// and never replaces a good SVID with one that is already expired.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SVID_FILE_NAME } from '../../src/manifests/constants';
import { systemClock } from '../../src/runtime/clock';
import type { LogFields, Logger } from '../../src/runtime/role/log';
import { svidReadiness } from '../../src/runtime/svid/identity';
import { MIN_RETRY_MS } from '../../src/runtime/svid/schedule';
import type { SvidClient } from '../../src/runtime/svid/svid-client';
import { startSvidClient } from '../../src/runtime/svid/svid-client';
import type { TestRegistrar } from '../support/test-registrar';
import { createTestAuthority, startTestRegistrar } from '../support/test-registrar';

interface LogLine {
  readonly msg: string;
  readonly fields: LogFields;
  readonly at: number;
}

let dir: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'svid-client-'))));

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recordingLogger(lines: LogLine[]): Logger {
  const record = (msg: string, fields: LogFields = {}): void =>
    void lines.push({ msg, fields, at: Date.now() });
  return {
    debug: record,
    info: record,
    warn: record,
    error: record,
    with: () => recordingLogger(lines),
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A registrar for shop/web-1 and an SVID client of that pod writing into a new directory. */
async function setup(svidTtlMs: number) {
  const lines: LogLine[] = [];
  const logger = recordingLogger(lines);
  const registrar: TestRegistrar = await startTestRegistrar({
    ca: await createTestAuthority(),
    namespace: 'shop',
    pod: 'web-1',
    account: 'web',
    svidTtlMs,
    logger,
  });
  cleanups.push(() => registrar.close());
  const outputDir = mkdtempSync(join(dir, 'out-'));
  const start = (): SvidClient => {
    const client = startSvidClient(
      {
        tokenPath: registrar.tokenPath,
        bundlePath: registrar.bundlePath,
        registrarUrl: registrar.url,
        serverName: registrar.serverName,
        outputDir,
      },
      { clock: systemClock, logger, random: Math.random },
    );
    cleanups.push(() => client.stop());
    return client;
  };
  return { registrar, start, lines, svidPath: join(outputDir, SVID_FILE_NAME) };
}

const unreachable = /^registrar unreachable: connect ECONNREFUSED 127\.0\.0\.1:\d+$/;

it('retries from its first attempt while the registrar is down, and gets its SVID once it answers', async () => {
  const { registrar, start, lines } = await setup(3_600_000);
  await registrar.stop();
  const client = start();
  await until(
    () => lines.filter((line) => line.msg === 'SVID request failed').length >= 2,
    'two failed requests',
  );
  expect(client.lastError()).toMatch(unreachable);
  const waiting = svidReadiness(client);
  expect(waiting.ready).toBe(false);
  if (!waiting.ready) expect(waiting.reason).toMatch(/^no SVID yet; registrar unreachable: /);
  await registrar.start();
  await client.ready;
  expect(svidReadiness(client)).toEqual({ ready: true });
  expect(client.lastError()).toBeUndefined();
  expect(lines.some((line) => line.msg === 'registrar answers again')).toBe(true);
});

it('reports an SVID that expired while the registrar was down, backs off, and renews once it is back', async () => {
  const { registrar, start, lines } = await setup(2_000);
  const client = start();
  const first = await client.ready;
  await registrar.stop();
  await until(() => !svidReadiness(client).ready, 'the SVID reported expired');
  const expired = svidReadiness(client);
  expect(expired).toEqual({
    ready: false,
    reason: `SVID expired at ${first.notAfter.toISOString()}; ${client.lastError() ?? ''}`,
  });
  expect(client.lastError()).toMatch(unreachable);
  // Failures after the expiry keep a jittered backoff instead of a tight loop.
  const afterExpiry = () =>
    lines.filter(
      (line) => line.msg === 'SVID request failed' && line.at >= first.notAfter.getTime(),
    );
  await until(() => afterExpiry().length >= 2, 'two failed requests after the expiry');
  for (const line of afterExpiry())
    expect(Number(line.fields.retryMs)).toBeGreaterThan(MIN_RETRY_MS);
  await registrar.start();
  await until(() => svidReadiness(client).ready, 'the SVID renewed');
  expect(client.current()?.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
});

it('keeps the SVID it has when the registrar hands out one that has expired', async () => {
  const { registrar, start, svidPath } = await setup(2_000);
  const client = start();
  await client.ready;
  const good = readFileSync(svidPath, 'utf8');
  // A registrar whose clock runs an hour late, with a CA valid then: its SVIDs end at once.
  const hourAgo = Date.now() - 3_600_000;
  const late = await createTestAuthority(new Date(hourAgo - 60_000));
  registrar.setCa({ active: late, bundlePem: late.stored.certificate });
  registrar.setClock(() => new Date(hourAgo));
  await until(() => client.lastError() !== undefined, 'a failed renewal');
  expect(client.lastError()).toMatch(
    /^registrar returned an SVID valid from \S+ to \S+, expired at \S+$/,
  );
  expect(readFileSync(svidPath, 'utf8')).toBe(good);
  expect(svidReadiness(client)).toEqual({ ready: true });
});
