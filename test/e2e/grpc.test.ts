// gRPC through the mesh on the test cluster: a meshed client calls the echo server's
// mesh.test.Echo through its own sidecar and the server's, with strict mTLS between them. The
// client speaks plaintext HTTP/2 (h2c) as a gRPC app in a mesh does; the sidecars must carry
// HTTP/2 end to end: unary calls with their metadata and trailers, error statuses, streams in
// both directions, deadlines and large messages, counted by the sidecar's metrics with the gRPC
// status deciding success. A port is gRPC by appProtocol or by its name alone; access control by
// method path, a TrafficSplit, a RateLimit and a CircuitBreaker act per call.
import type { KubeRest } from '../cluster/harness/kube-rest';
import type { PodSummary } from '../cluster/support/kube';
import {
  applyObjects,
  clusterIPOf,
  echoDeployment,
  kubectl,
  patchMeshConfig,
  portsService,
  readyPodOf,
  shellDeployment,
  waitForSidecarConfig as waitForSidecarConfigIn,
} from '../cluster/support/mesh-apps';
import { ECHO_GRPC_PORT } from '../cluster/apps/echo-ports';
import { SIDECAR_REQUESTS_METRIC } from '../../src/manifests/constants';
import type { GrpcOutcome, GrpcRepeatOutcome, ProtocolClients } from './support/protocol-clients';
import { reportLatency } from './support/protocol-clients';
import type { ProtocolMesh } from './support/protocol-mesh';
import {
  directPair,
  netnsOfPod,
  setUpProtocolMesh,
  tearDownProtocolMesh,
} from './support/protocol-mesh';
import { seriesText, sidecarMetrics, sumOf } from './support/sidecar-metrics';

const meshNamespace = 'mesh-e2e-grpc';
const apps = 'e2e-grpc';
/** Without injection: the same server and client, to compare latencies without the mesh. */
const plain = 'e2e-grpc-plain';
/** gRPC status codes the tests expect. */
const OK = 0;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const UNAVAILABLE = 14;

let mesh: ProtocolMesh | undefined;
let rest: KubeRest;
let clients: ProtocolClients;
let client: PodSummary;
let clientNetns: string;
let serverPod: string;
/** `<ClusterIP>:9090` of the Service whose port says gRPC by appProtocol. */
let grpcTarget: string;

const readyPod = (namespace: string, app: string): Promise<PodSummary> =>
  readyPodOf(rest, namespace, app);
const waitForSidecarConfig = (
  app: string,
  what: string,
  check: (config: string) => boolean,
): Promise<string> =>
  waitForSidecarConfigIn(rest, { meshNamespace, namespace: apps, app }, what, check);

async function targetOf(service: string): Promise<string> {
  return `${await clusterIPOf(rest, apps, service)}:${ECHO_GRPC_PORT}`;
}

/** Runs grpc-client from the meshed client's network namespace. */
function call<T = GrpcOutcome>(target: string, ...args: string[]): Promise<T> {
  return clients.run<T>(clientNetns, 'grpc-client', [target, ...args]);
}

/** The client sidecar's outbound requests to the Service per status class, and its series. */
async function outboundRequests(
  service: string,
): Promise<{ success: number; failure: number; series: string }> {
  const samples = await sidecarMetrics(client.status?.podIP ?? '');
  const labels = { direction: 'outbound', dst_service: service, dst_namespace: apps };
  return {
    success: sumOf(samples, SIDECAR_REQUESTS_METRIC, { ...labels, code: '2xx' }),
    failure: sumOf(samples, SIDECAR_REQUESTS_METRIC, { ...labels, code: '5xx' }),
    series: seriesText(samples, SIDECAR_REQUESTS_METRIC, { direction: 'outbound' }),
  };
}

beforeAll(async () => {
  const grpcPort = { name: 'grpc', port: ECHO_GRPC_PORT, appProtocol: 'grpc' };
  mesh = await setUpProtocolMesh({
    meshNamespace,
    apps,
    plain,
    deployFlags: ['--mtls-mode', 'strict'],
    clients: ['grpc-client'],
    objects: [
      echoDeployment(apps, 'echo-v1', { labels: { app: 'echo-v1', service: 'echo' } }),
      echoDeployment(apps, 'echo-v2', { labels: { app: 'echo-v2', service: 'echo' } }),
      shellDeployment(apps, 'client'),
      portsService(apps, 'echo', { service: 'echo' }, [grpcPort]),
      portsService(apps, 'echo-v1', { app: 'echo-v1' }, [grpcPort]),
      portsService(apps, 'echo-v2', { app: 'echo-v2' }, [grpcPort]),
      // gRPC by the port's name alone: no appProtocol.
      portsService(apps, 'echo-named', { app: 'echo-v1' }, [
        { name: 'grpc-echo', port: ECHO_GRPC_PORT },
      ]),
      // Ready, but nothing serves gRPC on its port: its sidecar cannot reach the app, and the
      // caller gets UNAVAILABLE.
      shellDeployment(apps, 'broken', ECHO_GRPC_PORT),
      portsService(apps, 'broken', { app: 'broken' }, [grpcPort]),
    ],
    ready: { [apps]: ['echo-v1', 'echo-v2', 'client', 'broken'] },
  });
  ({ rest, clients } = mesh);
  client = await readyPod(apps, 'client');
  clientNetns = await netnsOfPod(client);
  serverPod = (await readyPod(apps, 'echo-v1')).metadata.name;
  grpcTarget = await targetOf('echo-v1');
  await waitForSidecarConfig('client', 'the upstreams of the gRPC Services', (config) =>
    ['echo_v1_9090', 'echo_v2_9090', 'echo_named_9090'].every((name) => config.includes(name)),
  );
}, 300_000);

afterAll(() => tearDownProtocolMesh(mesh), 200_000);

describe('gRPC through both sidecars under strict mTLS', () => {
  it('answers a unary call byte for byte, with the server pod in x-pod and the trailer x-trailer', async () => {
    const outcome = await call(grpcTarget, 'unary', '1024');
    expect(outcome).toMatchObject({ code: OK, details: 'OK', receivedBytes: 1024 });
    expect(outcome.receivedSha256).toBe(outcome.sentSha256);
    expect(outcome.initial['x-pod']).toBe(serverPod);
    expect(outcome.trailing['x-trailer']).toBe('done');
  });

  it('passes an error status with its details and trailer to the client', async () => {
    const outcome = await call(grpcTarget, 'unary-status', String(NOT_FOUND));
    expect(outcome).toMatchObject({ code: NOT_FOUND, details: `wanted ${NOT_FOUND}` });
    expect(outcome.trailing['x-trailer']).toBe('failed');
  });

  it('streams 1000 server messages in order, each exact', async () => {
    const outcome = await call(grpcTarget, 'server-stream', '1000');
    expect(outcome).toMatchObject({
      code: OK,
      messages: 1000,
      receivedBytes: 1000 * 1024,
      firstMismatch: -1,
    });
    expect(outcome.trailing['x-trailer']).toBe('done');
  });

  it('carries 500 client messages of 1 KiB: the server hashes exactly what was sent', async () => {
    const outcome = await call(grpcTarget, 'client-stream', '500', '1024');
    expect(outcome).toMatchObject({ code: OK, receivedCount: 500 });
    expect(outcome.receivedSha256).toBe(outcome.sentSha256);
  });

  it('completes 200 bidirectional round trips', async () => {
    const outcome = await call(grpcTarget, 'bidi', '200');
    expect(outcome).toMatchObject({ code: OK, roundTrips: 200, matched: 200 });
  });

  it('ends a call past its deadline with DEADLINE_EXCEEDED, on time', async () => {
    const outcome = await call(grpcTarget, 'deadline', '2000', '300');
    expect(outcome.code).toBe(DEADLINE_EXCEEDED);
    expect(outcome.elapsedMs).toBeLessThan(1_000);
  });

  it('carries a 4 MiB message both ways', async () => {
    const outcome = await call(grpcTarget, 'large', String(4 * 1024 * 1024));
    expect(outcome).toMatchObject({ code: OK, receivedBytes: 4 * 1024 * 1024 });
    expect(outcome.receivedSha256).toBe(outcome.sentSha256);
  });

  it('treats a port named grpc-* without appProtocol as gRPC', async () => {
    const outcome = await call(await targetOf('echo-named'), 'unary', '64');
    expect(outcome).toMatchObject({ code: OK, receivedBytes: 64 });
    expect(outcome.receivedSha256).toBe(outcome.sentSha256);
    expect(outcome.initial['x-pod']).toBe(serverPod);
  });

  it('counts gRPC calls in the client sidecar: OK as 2xx, an error status as 5xx', async () => {
    const before = await outboundRequests('echo-v1');
    for (let index = 0; index < 5; index += 1)
      expect((await call(grpcTarget, 'unary', '16')).code).toBe(OK);
    for (let index = 0; index < 3; index += 1)
      expect((await call(grpcTarget, 'unary-status', String(NOT_FOUND))).code).toBe(NOT_FOUND);
    const after = await outboundRequests('echo-v1');
    process.stderr.write(`client sidecar, outbound requests:\n${after.series}\n`);
    expect(after.success - before.success).toBe(5);
    expect(after.failure - before.failure).toBe(3);
  });

  it('measures 200 sequential unary calls through the mesh and without it', async () => {
    const meshed = await call<GrpcRepeatOutcome>(grpcTarget, 'repeat', '200');
    const pair = await directPair(mesh as ProtocolMesh);
    const direct = await clients.run<GrpcRepeatOutcome>(pair.clientNetns, 'grpc-client', [
      `${pair.server.status?.podIP ?? ''}:${ECHO_GRPC_PORT}`,
      'repeat',
      '200',
    ]);
    reportLatency('gRPC unary (200 sequential calls)', meshed, direct);
    expect(direct.codes).toEqual({ [OK]: 200 });
    expect(meshed.codes).toEqual({ [OK]: 200 });
    expect(meshed.mismatches).toBe(0);
  });

  it('divides unary calls 80/20 between the backends of a TrafficSplit', async () => {
    await applyObjects([
      {
        apiVersion: 'split.smi-spec.io/v1alpha3',
        kind: 'TrafficSplit',
        metadata: { name: 'echo-canary', namespace: apps },
        spec: {
          service: 'echo',
          backends: [
            { service: 'echo-v1', weight: 80 },
            { service: 'echo-v2', weight: 20 },
          ],
        },
      },
    ]);
    await waitForSidecarConfig('client', 'the split', (config) => config.includes('split_clients'));
    const outcome = await call<GrpcRepeatOutcome>(await targetOf('echo'), 'repeat', '200');
    const v1 = Object.entries(outcome.pods)
      .filter(([pod]) => pod.startsWith('echo-v1-'))
      .reduce((sum, [, count]) => sum + count, 0);
    process.stderr.write(`gRPC split: ${JSON.stringify(outcome.pods)} of 200 calls\n`);
    expect(outcome.codes).toEqual({ [OK]: 200 });
    // 80% of 200 within three standard deviations (about 17 calls).
    expect(v1 / 200).toBeGreaterThanOrEqual(0.7);
    expect(v1 / 200).toBeLessThanOrEqual(0.9);
  });

  it('answers calls over a RateLimit with UNAVAILABLE, and serves again after a pause', async () => {
    await applyObjects([
      {
        apiVersion: 'specs.smi.nginx.com/v1alpha2',
        kind: 'RateLimit',
        metadata: { name: 'echo-v2-limit', namespace: apps },
        spec: {
          destination: { kind: 'Deployment', name: 'echo-v2', namespace: apps },
          name: 'echo-v2-limit',
          rate: '5r/s',
          burst: 0,
        },
      },
    ]);
    await waitForSidecarConfig('echo-v2', 'the rate limit', (config) =>
      config.includes('rate=5r/s'),
    );
    // 20 calls back to back, well over 5 a second (one per 200 ms, no burst).
    const outcome = await call<GrpcRepeatOutcome>(await targetOf('echo-v2'), 'repeat', '20');
    process.stderr.write(`gRPC rate limit: ${JSON.stringify(outcome.codes)} of 20\n`);
    const ok = outcome.codes[OK] ?? 0;
    const limited = outcome.codes[UNAVAILABLE] ?? 0;
    expect(ok + limited).toBe(20);
    expect(ok).toBeLessThanOrEqual(3);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await call(await targetOf('echo-v2'), 'unary', '16')).code).toBe(OK);
    const deleted = await kubectl(['delete', 'ratelimit', 'echo-v2-limit', '-n', apps]);
    expect(deleted.exitCode).toBe(0);
  });

  it('sends the calls of a failing gRPC Service to the fallback of its CircuitBreaker', async () => {
    const broken = await targetOf('broken');
    // Without the breaker the failure reaches the client.
    expect((await call(broken, 'unary', '16')).code).toBe(UNAVAILABLE);
    await applyObjects([
      {
        apiVersion: 'specs.smi.nginx.com/v1alpha1',
        kind: 'CircuitBreaker',
        metadata: { name: 'broken-breaker', namespace: apps },
        spec: {
          destination: { kind: 'Service', name: 'broken', namespace: apps },
          errors: 2,
          timeoutSeconds: 30,
          fallback: { service: `${apps}/echo-v1`, port: ECHO_GRPC_PORT },
        },
      },
    ]);
    await waitForSidecarConfig('client', 'the fallback server', (config) =>
      config.includes(' backup down;'),
    );
    // A gRPC call is a POST, never sent twice: the calls that meet the failures before the
    // breaker opens (errors: 2, one of them the unmeasured first call) fail; every later one is
    // served by the fallback.
    const outcome = await call<GrpcRepeatOutcome>(broken, 'repeat', '20');
    process.stderr.write(`gRPC circuit breaker: ${JSON.stringify(outcome)}\n`);
    expect(outcome.codes[OK] ?? 0).toBeGreaterThanOrEqual(18);
    expect((outcome.codes[OK] ?? 0) + (outcome.codes[UNAVAILABLE] ?? 0)).toBe(20);
    expect(outcome.pods).toEqual({ [serverPod]: outcome.codes[OK] ?? 0 });
  });

  it('under deny, admits only the method paths a TrafficTarget allows', async () => {
    await applyObjects([
      {
        apiVersion: 'specs.smi-spec.io/v1alpha3',
        kind: 'HTTPRouteGroup',
        metadata: { name: 'echo-unary', namespace: apps },
        spec: { matches: [{ name: 'unary', pathRegex: '/mesh\\.test\\.Echo/Unary' }] },
      },
      {
        apiVersion: 'access.smi-spec.io/v1alpha2',
        kind: 'TrafficTarget',
        metadata: { name: 'echo-unary-only', namespace: apps },
        spec: {
          destination: { kind: 'ServiceAccount', name: 'default', namespace: apps },
          sources: [{ kind: 'ServiceAccount', name: 'default', namespace: apps }],
          rules: [{ kind: 'HTTPRouteGroup', name: 'echo-unary', matches: ['unary'] }],
        },
      },
    ]);
    await patchMeshConfig(meshNamespace, { accessControlMode: 'deny' });
    await waitForSidecarConfig('echo-v1', 'the Unary route', (config) =>
      config.includes('Echo/Unary'),
    );
    const unary = await call(grpcTarget, 'unary', '64');
    const stream = await call(grpcTarget, 'server-stream', '10');
    process.stderr.write(`deny: ServerStream got ${stream.code} "${stream.details}"\n`);
    expect(unary).toMatchObject({ code: OK, receivedBytes: 64 });
    expect(unary.receivedSha256).toBe(unary.sentSha256);
    expect(stream.messages).toBe(0);
    expect([PERMISSION_DENIED, UNAVAILABLE]).toContain(stream.code);
  });
});
