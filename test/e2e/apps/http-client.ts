// An HTTP client run by the e2e tests inside a pod's network namespace: N sequential GETs on
// one keep-alive connection, after one unmeasured, to compare latencies through the mesh and
// without it; or one request, to read its status and body.
//   http-client <url> timed <N>
//   http-client <url> once [<name>:<value> ...]   (request headers)
// Outcome (timed): count, statuses (per status or error code), pods (per X-Served-By), p50Ms,
// p99Ms, elapsedMs; (once): status, body, servedBy, error.
import { bump, countOf, elapsedSince, errorText, percentiles, printOutcome } from './client-io';

const USAGE = 'http-client <url> timed <N> | once';
const REQUEST_TIMEOUT_MS = 5_000;

async function once(url: string, headers: Record<string, string> = {}): Promise<object> {
  try {
    const response = await fetch(url, {
      headers,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return {
      status: response.status,
      servedBy: response.headers.get('x-served-by'),
      body: await response.text(),
    };
  } catch (error) {
    return { error: errorText((error as { cause?: unknown }).cause ?? error) };
  }
}

async function timed(url: string, count: number): Promise<object> {
  await once(url);
  const statuses: Record<string, number> = {};
  const pods: Record<string, number> = {};
  const samples: number[] = [];
  const started = performance.now();
  for (let index = 0; index < count; index += 1) {
    const requestStarted = performance.now();
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      await response.arrayBuffer();
      samples.push(performance.now() - requestStarted);
      bump(statuses, String(response.status));
      bump(pods, response.headers.get('x-served-by') ?? '');
    } catch (error) {
      bump(statuses, `error ${errorText((error as { cause?: unknown }).cause ?? error)}`);
    }
  }
  return { count, statuses, pods, ...percentiles(samples), elapsedMs: elapsedSince(started) };
}

async function main(): Promise<void> {
  const [url, mode, count, ...rest] = process.argv.slice(2);
  if (url === undefined || (mode !== 'timed' && mode !== 'once')) throw new Error(USAGE);
  if (mode === 'once') {
    const headers = Object.fromEntries(
      [count, ...rest]
        .filter((each): each is string => each !== undefined)
        .map((each) => [each.slice(0, each.indexOf(':')), each.slice(each.indexOf(':') + 1)]),
    );
    printOutcome(await once(url, headers));
    return;
  }
  printOutcome(await timed(url, countOf(count, 200, USAGE)));
}

main().catch((error: unknown) => {
  process.stderr.write(`http-client: ${errorText(error)}\n`);
  process.exitCode = 1;
});
