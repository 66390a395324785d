// Tracing's settings on their way from deploy to the sidecar: the stored telemetry object read
// into the snapshot (ConfigMap meshconfig, then MeshConfig over it), the ratio nginx is given,
// upgrade's round trip of the protocol, and the agent's reading of nginx's span lines.
import { buildMeshConfig } from '../../src/manifests/mesh-config/model';
import { defaultDeployInput } from '../../src/manifests/mesh-config/deploy-input';
import { renderMeshConfigJson } from '../../src/manifests/mesh-config/render';
import { upgradeInput } from '../../src/manifests/mesh-config/stored';
import { MESH_CONFIG_MAP_KEY } from '../../src/manifests/constants';
import { meshBaseFromConfigMap } from '../../src/manifests/snapshot/mesh-base';
import { buildMeshSettings } from '../../src/manifests/snapshot/mesh-settings';
import { samplerRatioText } from '../../src/render/sidecar/model';
import { podResource } from '../../src/runtime/agent/tracing/agent-tracing';
import { withRoom } from '../../src/runtime/agent/tracing/span-pump';
import { parseSpanTake, toMeshSpan } from '../../src/runtime/agent/tracing/nginx-spans';
import type { NginxSpan } from '../../src/runtime/agent/tracing/nginx-spans';

const configMap = (stored: unknown) => ({
  data: { [MESH_CONFIG_MAP_KEY]: JSON.stringify(stored) },
});
const OTLP = { exporters: { otlp: { host: 'otel.tracing', port: 4317 } }, samplerRatio: 0.25 };

describe('the snapshot reads telemetry', () => {
  it('from ConfigMap meshconfig, gRPC unless it says http', () => {
    expect(meshBaseFromConfigMap(configMap({ telemetry: OTLP })).mesh.telemetry).toEqual({
      host: 'otel.tracing',
      port: 4317,
      protocol: 'grpc',
      samplerRatio: 0.25,
    });
    const http = {
      telemetry: { exporters: { otlp: { host: 'h', port: 4318, protocol: 'http' } } },
    };
    // no ratio stored: NGINX Service Mesh's default, 0.01
    expect(meshBaseFromConfigMap(configMap(http)).mesh.telemetry).toEqual({
      host: 'h',
      port: 4318,
      protocol: 'http',
      samplerRatio: 0.01,
    });
  });

  it('as off when there is no exporter, and says what is wrong with a bad one', () => {
    expect(meshBaseFromConfigMap(configMap({ telemetry: {} })).mesh.telemetry).toBeUndefined();
    expect(meshBaseFromConfigMap(configMap({})).mesh.telemetry).toBeUndefined();
    const bad = meshBaseFromConfigMap(
      configMap({ telemetry: { exporters: { otlp: { host: 'h', port: 0 } } } }),
    );
    expect(bad.mesh.telemetry).toBeUndefined();
    expect(bad.problems).toEqual([
      'ConfigMap meshconfig: telemetry.exporters.otlp.port: expected a port from 1 to 65535; tracing is off',
    ]);
  });

  it('from MeshConfig over the ConfigMap: a new exporter, {} to turn it off, a bad one ignored', () => {
    const base = meshBaseFromConfigMap(configMap({ telemetry: OTLP })).mesh;
    const warnings: string[] = [];
    const moved = buildMeshSettings(
      base,
      {
        spec: {
          telemetry: {
            exporters: { otlp: { host: 'jaeger', port: 4318, protocol: 'http' } },
            samplerRatio: 1,
          },
        },
      },
      warnings,
    );
    expect(moved.telemetry).toEqual({
      host: 'jaeger',
      port: 4318,
      protocol: 'http',
      samplerRatio: 1,
    });
    expect(
      buildMeshSettings(base, { spec: { telemetry: {} } }, warnings).telemetry,
    ).toBeUndefined();
    expect(buildMeshSettings(base, { spec: {} }, warnings).telemetry).toEqual(base.telemetry);
    expect(warnings).toEqual([]);
    const kept = buildMeshSettings(
      base,
      { spec: { telemetry: { ...OTLP, samplerRatio: 2 } } },
      warnings,
    );
    expect(kept.telemetry).toEqual(base.telemetry);
    expect(warnings).toEqual([
      'MeshConfig nginx-mesh-config spec.telemetry.samplerRatio: expected a number from 0 to 1; keeping the current value',
    ]);
  });

  it('from what deploy stores, the protocol included, and upgrade keeps it', () => {
    const outcome = buildMeshConfig(
      {
        ...defaultDeployInput('1.0.0'),
        telemetryExporters: ['type=otlp,host=jaeger.tracing,port=4318,protocol=http'],
        telemetrySamplerRatio: '1',
      },
      { namespace: 'nginx-mesh', files: new Map() },
    );
    if (!('config' in outcome)) throw new Error(outcome.problems.join('; '));
    const stored: unknown = JSON.parse(renderMeshConfigJson(outcome.config));
    expect(meshBaseFromConfigMap(configMap(stored)).mesh.telemetry).toEqual({
      host: 'jaeger.tracing',
      port: 4318,
      protocol: 'http',
      samplerRatio: 1,
    });
    expect(upgradeInput(stored, undefined, { imageTag: '1.0.1' }).telemetryExporters).toEqual([
      'type=otlp,host=jaeger.tracing,port=4318,protocol=http',
    ]);
  });
});

it('gives nginx the ratio with at most six decimals', () => {
  expect([0, 1, 0.01, 0.5, 0.123456789, 1e-7, 0.0000015].map(samplerRatioText)).toEqual([
    '0',
    '1',
    '0.01',
    '0.5',
    '0.123457',
    '0',
    '0.000002',
  ]);
});

describe("the agent reads nginx's span lines", () => {
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const line = (rest: string) => `${trace} 00f067aa0ba902b7 ${rest}`;

  it('counts lines it cannot read, and reads a take without its header as unreadable', () => {
    const take = parseSpanTake(
      [
        'zone mesh_trace spans 3 dropped 7 bytes 300/4000',
        line('- client 1700000000000000 1500 200 GET /a {"service":"shop/api"}'),
        line('- sideways 1 1 200 GET /a {}'),
        'garbage',
        line('a3ce929d0e0e4736 server 1700000000000000 20 404 POST /b%20c not json'),
        '',
      ].join('\n'),
    );
    expect(take.zone).toBe('mesh_trace');
    expect(take.dropped).toBe(7);
    expect(take.unreadable).toBe(2);
    expect(take.spans).toHaveLength(2);
    expect(take.spans[1]).toMatchObject({
      parentSpanId: 'a3ce929d0e0e4736',
      kind: 'server',
      status: 404,
      method: 'POST',
      path: '/b c',
      attrs: {},
    });
    expect(parseSpanTake('500 Internal Server Error').unreadable).toBe(1);
  });

  const span = (change: Partial<NginxSpan>): NginxSpan => ({
    traceId: trace,
    spanId: '00f067aa0ba902b7',
    kind: 'client',
    startUs: 1_700_000_000_000_000n,
    durationUs: 1_500n,
    status: 200,
    method: 'POST',
    path: '/mesh.test.Echo/Unary',
    attrs: {},
    ...change,
  });

  it('names a gRPC call by its method and fails it on a status other than OK', () => {
    const client = toMeshSpan(
      span({ attrs: { grpc: '5', service: 'shop/rpc', upstream: '10.1.0.31:8888' } }),
    );
    expect(client).toEqual({
      traceId: trace,
      spanId: '00f067aa0ba902b7',
      kind: 'client',
      name: 'mesh.test.Echo/Unary',
      startUnixNano: 1_700_000_000_000_000_000n,
      endUnixNano: 1_700_000_000_001_500_000n,
      status: 'error',
      statusMessage: 'grpc-status 5',
      attributes: {
        'http.request.method': 'POST',
        'url.path': '/mesh.test.Echo/Unary',
        'http.response.status_code': 200,
        'rpc.system': 'grpc',
        'rpc.service': 'mesh.test.Echo',
        'rpc.method': 'Unary',
        'rpc.grpc.status_code': 5,
        'server.address': 'rpc.shop.svc',
        'network.peer.address': '10.1.0.31',
        'network.peer.port': 8888,
      },
    });
    // NOT_FOUND is the caller's problem, not the server's
    expect(toMeshSpan(span({ kind: 'server', attrs: { grpc: '5' } })).status).toBe('unset');
    expect(toMeshSpan(span({ kind: 'server', attrs: { grpc: '14' } })).status).toBe('error');
    expect(toMeshSpan(span({ attrs: { grpc: '0' } })).status).toBe('unset');
  });

  it('takes the last endpoint nginx tried, and the caller on a server span', () => {
    const retried = toMeshSpan(
      span({ attrs: { upstream: '10.1.0.7:80, 10.1.0.8:80 : [fd00::9]:80' } }),
    );
    expect(retried.attributes['network.peer.address']).toBe('fd00::9');
    const server = toMeshSpan(
      span({
        kind: 'server',
        method: 'GET',
        path: '/',
        attrs: { peer: '10.1.0.9', peer_id: 'spiffe://example.org/ns/shop/sa/web' },
      }),
    );
    expect(server.name).toBe('GET');
    expect(server.attributes).toMatchObject({
      'client.address': '10.1.0.9',
      'nsm.peer.spiffe_id': 'spiffe://example.org/ns/shop/sa/web',
    });
    expect(toMeshSpan(span({ status: 0 })).statusMessage).toBe('no response');
  });
});

it("names the pod's resource after its workload", () => {
  expect(
    podResource({ namespace: 'shop', name: 'web-5d9c-x7k2p', owner: 'deployment/web' }),
  ).toEqual({
    'service.name': 'web',
    'k8s.namespace.name': 'shop',
    'k8s.pod.name': 'web-5d9c-x7k2p',
    'k8s.deployment.name': 'web',
  });
  // a bare pod: its own name; an owner kind without a k8s.* attribute adds none
  expect(podResource({ namespace: 'shop', name: 'debug', owner: 'pod/debug' })).toEqual({
    'service.name': 'debug',
    'k8s.namespace.name': 'shop',
    'k8s.pod.name': 'debug',
  });
  expect(podResource({ namespace: '', name: '', owner: '' })).toEqual({
    'service.name': 'unknown',
  });
});

it('cuts a take to the spans the exporter has room for, counting the rest unread', () => {
  const take = 'zone mesh_trace spans 3 dropped 0 bytes 30/4000\na\nb\nc\n';
  expect(withRoom(take, Number.POSITIVE_INFINITY)).toEqual({ text: take, skipped: 0 });
  expect(withRoom(take, 3)).toEqual({ text: take, skipped: 0 });
  expect(withRoom(take, 2)).toEqual({
    text: 'zone mesh_trace spans 3 dropped 0 bytes 30/4000\na\nb\n',
    skipped: 1,
  });
  expect(withRoom(take, 0)).toEqual({
    text: 'zone mesh_trace spans 3 dropped 0 bytes 30/4000\n',
    skipped: 3,
  });
  expect(withRoom('zone only', 0)).toEqual({ text: 'zone only', skipped: 0 });
});
