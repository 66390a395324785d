// The sidecar's access log as the renderer prints it: nothing without a destination, and with one
// a format per kind of server, in the mesh configuration's format, on the traffic servers only.
import type { Directive } from '../../src/render/agent-nginx';
import { renderSidecarConfig } from '../../src/render/sidecar';
import { HTTP_LOG_FIELDS, TCP_LOG_FIELDS } from '../../src/render/sidecar/access-log';
import { buildHttpDirectives } from '../../src/render/sidecar/http-directives';
import { buildSidecarModel } from '../../src/render/sidecar/model';
import { buildStreamDirectives } from '../../src/render/sidecar/stream-directives';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { grpcServices, shopContext, shopSnapshot, withMesh } from '../support/sidecar-snapshots';

const FIFO = '/etc/nginx-mesh/access.log';
/** Whole lines, at most PIPE_BUF at a time, at least every second. */
const BUFFERING = 'buffer=4k flush=1s';

function blocks(
  mesh: Partial<MeshSnapshot['mesh']>,
  accessLog: string | undefined = FIFO,
): { http: Directive[]; stream: Directive[] } {
  const snapshot = withMesh(mesh, {
    services: { ...shopSnapshot().services, ...grpcServices },
  });
  const context = shopContext(accessLog === undefined ? {} : { accessLog });
  const { model } = buildSidecarModel(snapshot, context);
  return {
    http: buildHttpDirectives(model, context),
    stream: buildStreamDirectives(model, context),
  };
}

const named = (directives: readonly Directive[], name: string): Directive[] =>
  directives.filter((directive) => directive.name === name);

/** Each server by its first listen address: the access_log directives in it, printed. */
function logsByServer(directives: readonly Directive[]): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const server of named(directives, 'server')) {
    const children = server.children ?? [];
    const listen = named(children, 'listen')[0]?.args[0] ?? '?';
    result[listen] = named(children, 'access_log').map((log) => log.args.join(' '));
  }
  return result;
}

/** Each log_format by name: its arguments after the name. */
function formats(directives: readonly Directive[]): Record<string, readonly string[]> {
  return Object.fromEntries(
    named(directives, 'log_format').map((format) => [format.args[0] ?? '', format.args.slice(1)]),
  );
}

/** A json format with every variable given a value, as nginx would print it. */
function sampleLine(text: string): Record<string, unknown> {
  return JSON.parse(text.replace(/\$[a-z0-9_]+/g, '7')) as Record<string, unknown>;
}

describe('without a destination for the access log', () => {
  it.each(['default', 'json'] as const)('%s prints no format and logs nothing', (logFormat) => {
    const snapshot = withMesh({ logFormat, mtlsMode: 'strict' });
    const { text } = renderSidecarConfig(snapshot, shopContext());
    expect(text).not.toContain('log_format');
    expect(text.match(/access_log [^;]*;/g)).toEqual(['access_log off;']);
  });
});

describe('with the agent relaying the access log', () => {
  it('logs on the HTTP traffic servers only, each with its kind of server', () => {
    const { http } = blocks({ mtlsMode: 'strict' });
    expect(named(http, 'access_log').map((log) => log.args)).toEqual([['off']]);
    expect(logsByServer(http)).toEqual({
      // outbound HTTP/1 and HTTP/2, inbound HTTP/1 and HTTP/2, refused egress
      '8889': [`${FIFO} mesh_http_outbound ${BUFFERING}`],
      '8892': [`${FIFO} mesh_http_outbound ${BUFFERING}`],
      '8888': [`${FIFO} mesh_http_inbound ${BUFFERING}`],
      '8891': [`${FIFO} mesh_http_inbound ${BUFFERING}`],
      '127.0.0.1:8902': [`${FIFO} mesh_http_egress ${BUFFERING}`],
      // the stats socket and the probe redirects
      'unix:/etc/nginx-mesh/stats/nginx.sock': [],
      '8895': [],
    });
  });

  it('logs on the TCP traffic servers only; the redirect only what no other server logs', () => {
    const { stream } = blocks({ mtlsMode: 'permissive' });
    expect(named(stream, 'access_log')).toEqual([]);
    expect(logsByServer(stream)).toEqual({
      '8900': [`${FIFO} mesh_tcp_outbound ${BUFFERING} if=$mesh_outbound_passed_service`],
      '8906': [`${FIFO} mesh_tcp_outbound ${BUFFERING}`],
      '8901': [],
      '8904': [`${FIFO} mesh_tcp_inbound ${BUFFERING}`],
      '8907': [`${FIFO} mesh_tcp_inbound ${BUFFERING}`],
      '127.0.0.1:8905': [],
    });
  });

  it('has a format for refused egress only where egress is refused', () => {
    expect(Object.keys(formats(blocks({ mtlsMode: 'strict' }).http))).toEqual([
      'mesh_http_inbound',
      'mesh_http_outbound',
      'mesh_http_egress',
    ]);
    expect(Object.keys(formats(blocks({ mtlsMode: 'permissive' }).http))).toEqual([
      'mesh_http_inbound',
      'mesh_http_outbound',
    ]);
  });

  it("default: nginx's combined format with the client of the server's kind, then the mesh's fields", () => {
    const http = formats(blocks({ logFormat: 'default' }).http);
    expect(http.mesh_http_inbound).toEqual([
      '$proxy_protocol_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent ' +
        '"$http_referer" "$http_user_agent" direction="inbound" peer_id="$mesh_peer_spiffe_id" ' +
        'host="$host" duration=$request_time service="-" upstream="$upstream_addr" ' +
        'upstream_status="$upstream_status" upstream_duration="$upstream_response_time" ' +
        'trace_id="-"',
    ]);
    expect(http.mesh_http_outbound?.[0]).toMatch(
      /^\$remote_addr - \$remote_user .* direction="outbound" peer_id="-" .* service="\$mesh_outbound_service" /,
    );
    const tcp = formats(blocks({ logFormat: 'default' }).stream);
    expect(tcp.mesh_tcp_inbound).toEqual([
      '$proxy_protocol_addr [$time_local] $protocol $mesh_tcp_status $bytes_sent $bytes_received ' +
        '$session_time direction="inbound" peer_id="$mesh_peer_spiffe_id" service="-" ' +
        'upstream="$upstream_addr"',
    ]);
  });

  it('default names every field that its fixed part does not print', () => {
    const http = formats(blocks({ logFormat: 'default' }).http).mesh_http_outbound?.[0] ?? '';
    const tcp = formats(blocks({ logFormat: 'default' }).stream).mesh_tcp_outbound?.[0] ?? '';
    for (const field of HTTP_LOG_FIELDS.filter((candidate) => candidate.fixed !== true))
      expect(http).toContain(` ${field.name}=`);
    for (const field of TCP_LOG_FIELDS.filter((candidate) => candidate.fixed !== true))
      expect(tcp).toContain(` ${field.name}=`);
  });

  it('json: one object per line, every field by its name, escaped for JSON', () => {
    const { http, stream } = blocks({ logFormat: 'json', mtlsMode: 'strict' });
    for (const [name, args] of Object.entries(formats(http))) {
      expect(args[0]).toBe('escape=json');
      expect(Object.keys(sampleLine(args[1] ?? ''))).toEqual([
        ...HTTP_LOG_FIELDS.map((field) => field.name),
        'trace_id',
      ]);
      expect(sampleLine(args[1] ?? '')).toMatchObject({
        direction: name === 'mesh_http_inbound' ? 'inbound' : 'outbound',
        status: 7,
        bytes_sent: 7,
        duration: 7,
      });
    }
    expect(sampleLine(formats(http).mesh_http_egress?.[1] ?? '')).toMatchObject({
      service: 'egress',
      peer_id: '',
    });
    for (const [name, args] of Object.entries(formats(stream))) {
      expect(args[0]).toBe('escape=json');
      expect(Object.keys(sampleLine(args[1] ?? ''))).toEqual(
        TCP_LOG_FIELDS.map((field) => field.name),
      );
      expect(sampleLine(args[1] ?? '')).toMatchObject({
        direction: name === 'mesh_tcp_inbound' ? 'inbound' : 'outbound',
        status: 7,
        bytes_received: 7,
      });
    }
  });

  it('carries the trace id while the mesh traces, empty otherwise and on refused egress', () => {
    const telemetry = { host: 'otel', port: 4317, protocol: 'grpc', samplerRatio: 1 } as const;
    const traced = formats(blocks({ logFormat: 'json', mtlsMode: 'strict', telemetry }).http);
    expect(sampleLine(traced.mesh_http_inbound?.[1] ?? '')).toMatchObject({ trace_id: '7' });
    expect(traced.mesh_http_outbound?.[1]).toContain('"trace_id":"$mesh_trace_id"');
    expect(traced.mesh_http_egress?.[1]).toContain('"trace_id":""');
    const untraced = formats(blocks({ logFormat: 'json', mtlsMode: 'strict' }).http);
    expect(untraced.mesh_http_inbound?.[1]).toContain('"trace_id":""');
    const plain = formats(blocks({ logFormat: 'default', telemetry }).http);
    expect(plain.mesh_http_inbound?.[0]).toMatch(/ trace_id="\$mesh_trace_id"$/);
  });

  it("json prints a status nginx left unset (000) as the number 0, default as nginx's $status", () => {
    const json = renderSidecarConfig(
      withMesh({ logFormat: 'json' }),
      shopContext({ accessLog: FIFO }),
    ).text;
    expect(json).toContain('\\"status\\":$mesh_log_status,');
    expect(json).toContain(
      '    map $status $mesh_log_status {\n        default $status;\n        ~^0+([0-9]+)$ $1;\n    }\n',
    );
    const text = renderSidecarConfig(withMesh({}), shopContext({ accessLog: FIFO })).text;
    expect(text).not.toContain('$mesh_log_status');
  });
});
