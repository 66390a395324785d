// The README's demo, run as a user runs it (`npm run demo`, then `npm run demo:down`), on a cluster
// instance of its own: it must end with nginx-meshctl top's table of real traffic, read from the
// sidecars through a real Prometheus and the Traffic Metrics API behind the real API server, with
// the failure share the sample app injects, and a trace of its traffic in the demo's Jaeger, and
// leave nothing behind when taken down.
import { execa } from 'execa';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
/** An instance no test file uses, so the demo's cluster runs beside the test cluster. */
const DEMO_INSTANCE = '6';
const clusterDir = join(root, '.cluster-test', 'demo');
const env = { NMK_CLUSTER_INSTANCE: DEMO_INSTANCE, NMK_CLUSTER_DIR: clusterDir };
const kubeconfig = join(clusterDir, 'kubeconfig');

function demo(action: 'up' | 'down') {
  return execa(
    process.execPath,
    [join(root, 'scripts', 'run-ts.mjs'), join(root, 'scripts', 'demo', 'demo.ts'), action],
    { cwd: root, env, reject: false, timeout: 420_000, all: true },
  );
}

/** The row of a top table whose first column is name, as its columns. */
function row(table: string, name: string): string[] | undefined {
  return table
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/))
    .find((columns) => columns[0] === name);
}

function percent(text: string | undefined): number {
  return Number((text ?? '').replace('%', ''));
}

/** Jaeger holds the demo's traces: the one printed has both sidecars' spans, one trace. */
async function expectDemoTrace(stdout: string): Promise<void> {
  const traceUrl = /a trace of the demo: (http:\/\/\S+\/api\/traces\/[0-9a-f]{32})$/m.exec(
    stdout,
  )?.[1];
  expect(traceUrl).toBeDefined();
  const trace = (await (await fetch(traceUrl ?? '')).json()) as {
    data: {
      spans: { processID: string; tags: { key: string; value: unknown }[] }[];
      processes: Record<string, { serviceName: string }>;
    }[];
  };
  const [first] = trace.data;
  const hops = (first?.spans ?? []).map((span) => [
    first?.processes[span.processID]?.serviceName,
    span.tags.find((tag) => tag.key === 'span.kind')?.value,
  ]);
  expect(hops).toContainEqual(['traffic', 'client']);
  expect(
    hops.some(([service, kind]) => kind === 'server' && ['web', 'api'].includes(String(service))),
  ).toBe(true);
}

afterAll(async () => {
  const down = await demo('down');
  process.stderr.write(`demo:down exit ${String(down.exitCode)}\n`);
  rmSync(clusterDir, { recursive: true, force: true });
}, 300_000);

it('ends with a top table of real traffic, api failing its injected share', async () => {
  const started = Date.now();
  const up = await demo('up');
  const wallMs = Date.now() - started;
  process.stderr.write(`demo up: exit ${String(up.exitCode)} in ${wallMs} ms\n${up.stdout}\n`);
  if (up.exitCode !== 0) throw new Error(`demo failed:\n${up.all.slice(-4000)}`);
  expect(up.stderr).toMatch(/\[8\/8\] waiting for the first figures in nginx-meshctl top: done/);
  const table = up.stdout;
  expect(table).toContain('Deployment  Incoming Success  Outgoing Success  NumRequests');
  const web = row(table, 'web');
  const api = row(table, 'api');
  const traffic = row(table, 'traffic');
  expect(web?.[1]).toBe('100.00%');
  expect(web?.[2]).toBe('-');
  // The echo server fails exactly every tenth request; a window of a few dozen stays close.
  expect(percent(api?.[1])).toBeGreaterThanOrEqual(80);
  expect(percent(api?.[1])).toBeLessThan(100);
  // The generator sends half its requests to api: about 95% of them succeed.
  expect(traffic?.[1]).toBe('-');
  expect(percent(traffic?.[2])).toBeGreaterThanOrEqual(90);
  expect(percent(traffic?.[2])).toBeLessThan(100);
  expect(Number(traffic?.[3])).toBeGreaterThan(0);

  // Every pod of the mesh and the sample runs an image built here, imported, never pulled.
  const kubectl = (args: readonly string[]) =>
    execa(join(clusterDir, 'bin', 'kubectl'), ['--kubeconfig', kubeconfig, ...args], {
      reject: false,
    });
  const containers = (
    await kubectl([
      ...['get', 'pods', '-A', '-o'],
      'jsonpath={range .items[*].status.initContainerStatuses[*]}{.image} {.imageID}{"\\n"}{end}{range .items[*].status.containerStatuses[*]}{.image} {.imageID}{"\\n"}{end}',
    ])
  ).stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' '));
  expect(containers.length).toBeGreaterThanOrEqual(12);
  for (const [image, id] of containers) {
    expect(image).toMatch(/^localhost\/[\w.-]+:[\w.-]+$/);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
  }
  const names = containers.map(([image]) => image?.split(':')[0]);
  for (const name of ['nginx-mesh-controller', 'nginx-mesh-init', 'nginx-mesh-sidecar', 'nats'])
    expect(names).toContain(`localhost/${name}`);
  // The sidecar runs as uid 2102 on a read-only root file system.
  const sidecar = ['exec', '-n', 'demo', 'deploy/web', '-c', 'nginx-mesh-sidecar', '--'];
  expect((await kubectl([...sidecar, 'id', '-u'])).stdout).toBe('2102');
  const write = await kubectl([...sidecar, 'touch', '/probe']);
  expect(write.exitCode).not.toBe(0);
  expect(write.stderr).toContain('Read-only file system');

  // The same API answers per edge for the generator: both services, by name.
  const edges = await execa(
    join(root, 'dist', 'nginx-meshctl'),
    ['--kubeconfig', kubeconfig, 'top', 'deployment/traffic', '-n', 'demo'],
    { reject: false, timeout: 60_000 },
  );
  expect(edges.stderr).toBe('');
  expect(edges.exitCode).toBe(0);
  expect(edges.stdout).toMatch(/^\s+To\s+web\s+100\.00%/m);
  expect(edges.stdout).toMatch(/^\s+To\s+api\s+\d+\.\d\d%/m);

  await expectDemoTrace(up.stdout);

  const down = await demo('down');
  expect(down.exitCode).toBe(0);
  expect(down.stderr).toMatch(/\[4\/4\] stopping the local cluster: done/);
  const namespaces = await execa('ip', ['netns', 'list']);
  expect(namespaces.stdout).not.toMatch(new RegExp(`nmk${DEMO_INSTANCE}-`));
  expect(existsSync(join(clusterDir, 'demo', 'prometheus.pid'))).toBe(false);
  expect(existsSync(join(clusterDir, 'demo', 'jaeger.pid'))).toBe(false);
}, 480_000);
