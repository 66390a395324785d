// OTLP's protobuf encoding of spans: what the agent encodes, a collector decodes field by field
// (test/support/otlp-decode.ts reads opentelemetry-proto's field numbers on its own), including
// fixed64 times, UTF-8 strings, int64 and double attributes and fields left at their default.
import { encodeExportTraceRequest } from '../../src/runtime/agent/tracing/otlp-protobuf';
import type { MeshSpan, TraceResource } from '../../src/runtime/agent/tracing/span';
import { decodeExportTraceRequest, readFields, spansOf } from '../support/otlp-decode';
import type { DecodedSpan } from '../support/otlp-decode';

const resource: TraceResource = {
  'service.name': 'web',
  'k8s.pod.name': 'web-7d4b9c-x2x9q',
  'k8s.namespace.name': 'shop',
};
const scope = { name: 'nginx-mesh', version: '0.1.0' };

const serverSpan: MeshSpan = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  parentSpanId: 'a3ce929d0e0e4736',
  kind: 'server',
  name: 'GET /ünïcødé/日本/🚀',
  startUnixNano: 1_700_000_000_123_456_789n,
  endUnixNano: 1_700_000_000_223_456_789n,
  status: 'error',
  statusMessage: 'upstream reset — 接続',
  attributes: {
    'http.request.method': 'GET',
    'http.response.status_code': 503,
    'http.route': '/ü/🚀',
    'mesh.retried': true,
    'mesh.cached': false,
    'mesh.weight': 0.25,
    'mesh.offset': -1,
    'mesh.minimum': -(2 ** 63),
    'mesh.zero': 0,
    'mesh.empty': '',
  },
};

const clientSpan: MeshSpan = {
  traceId: 'ffffffffffffffffffffffffffffffff',
  spanId: 'ffffffffffffffff',
  kind: 'client',
  name: 'api',
  startUnixNano: 0n,
  endUnixNano: 2n ** 64n - 1n,
  status: 'unset',
  attributes: {},
};

function roundTrip(spans: readonly MeshSpan[]): DecodedSpan[] {
  return spansOf(decodeExportTraceRequest(encodeExportTraceRequest(resource, scope, spans)));
}

/** The field numbers of a span as written, in order. */
function rawSpanFields(span: MeshSpan): number[] {
  const only = (bytes: Uint8Array, field: number): Uint8Array => {
    const found = readFields(bytes).find((raw) => raw.field === field)?.bytes;
    if (found === undefined) throw new Error(`no field ${field}`);
    return found;
  };
  const request = encodeExportTraceRequest({}, scope, [span]);
  const spanBytes = only(only(only(request, 1), 2), 2);
  return readFields(spanBytes).map((raw) => raw.field);
}

function indexOf(haystack: Uint8Array, needle: readonly number[]): number {
  return Buffer.from(haystack).indexOf(Buffer.from(needle));
}

describe('encodeExportTraceRequest', () => {
  it('carries one resource with its attributes and one scope with its name and version', () => {
    const request = decodeExportTraceRequest(encodeExportTraceRequest(resource, scope, []));
    expect(request.resourceSpans).toHaveLength(1);
    const [resourceSpans] = request.resourceSpans;
    expect(resourceSpans?.resource).toEqual({
      'service.name': { stringValue: 'web' },
      'k8s.pod.name': { stringValue: 'web-7d4b9c-x2x9q' },
      'k8s.namespace.name': { stringValue: 'shop' },
    });
    expect(resourceSpans?.scopeSpans).toEqual([
      { scope: { name: 'nginx-mesh', version: '0.1.0' }, spans: [] },
    ]);
  });

  it('round-trips a server span field by field', () => {
    const [span] = roundTrip([serverSpan]);
    expect(span?.traceId).toBe(serverSpan.traceId);
    expect(span?.spanId).toBe(serverSpan.spanId);
    expect(span?.parentSpanId).toBe(serverSpan.parentSpanId);
    expect(span?.name).toBe(serverSpan.name);
    expect(span?.kind).toBe(2);
    expect(span?.startTimeUnixNano).toBe(serverSpan.startUnixNano);
    expect(span?.endTimeUnixNano).toBe(serverSpan.endUnixNano);
    expect(span?.status).toEqual({ message: 'upstream reset — 接続', code: 2 });
    expect(span?.attributes).toEqual({
      'http.request.method': { stringValue: 'GET' },
      'http.response.status_code': { intValue: 503n },
      'http.route': { stringValue: '/ü/🚀' },
      'mesh.retried': { boolValue: true },
      'mesh.cached': { boolValue: false },
      'mesh.weight': { doubleValue: 0.25 },
      'mesh.offset': { intValue: -1n },
      'mesh.minimum': { intValue: -(2n ** 63n) },
      'mesh.zero': { intValue: 0n },
      'mesh.empty': { stringValue: '' },
    });
  });

  it('leaves out an absent parent, a zero time and an unset status; keeps the largest time', () => {
    const [span] = roundTrip([clientSpan]);
    expect(span).toEqual({
      traceId: clientSpan.traceId,
      spanId: clientSpan.spanId,
      parentSpanId: undefined,
      name: 'api',
      kind: 3,
      startTimeUnixNano: 0n,
      endTimeUnixNano: 2n ** 64n - 1n,
      attributes: {},
      status: undefined,
    });
    expect(rawSpanFields(clientSpan)).toEqual([1, 2, 5, 6, 8]);
    expect(rawSpanFields(serverSpan)).toEqual([
      1,
      2,
      4,
      5,
      6,
      7,
      8,
      ...Array<number>(10).fill(9),
      15,
    ]);
  });

  it('writes an ok status without a message as its code alone', () => {
    const [span] = roundTrip([{ ...clientSpan, status: 'ok' }]);
    expect(span?.status).toEqual({ message: '', code: 1 });
  });

  it('writes a message on an unset status', () => {
    const [span] = roundTrip([{ ...clientSpan, statusMessage: 'why' }]);
    expect(span?.status).toEqual({ message: 'why', code: 0 });
  });

  it('writes times as little-endian fixed64 (wire type 1)', () => {
    const bytes = encodeExportTraceRequest({}, scope, [
      { ...clientSpan, startUnixNano: 0x0102030405060708n, endUnixNano: 0xf0e0d0c0b0a09080n },
    ]);
    // Tags: field 7 and 8, wire type 1.
    expect(indexOf(bytes, [0x39, 8, 7, 6, 5, 4, 3, 2, 1])).toBeGreaterThan(0);
    expect(indexOf(bytes, [0x41, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0])).toBeGreaterThan(
      0,
    );
  });

  it('writes a negative int64 as ten bytes of two’s complement', () => {
    const bytes = encodeExportTraceRequest({}, scope, [{ ...clientSpan, attributes: { n: -1 } }]);
    // AnyValue{int_value=3}: tag 0x18, then 0xff × 9 and 0x01; the AnyValue is 11 bytes long.
    expect(
      indexOf(bytes, [0x12, 11, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ).toBeGreaterThan(0);
  });

  it.each([
    ['an integer', 'int_value', 42, { intValue: 42n }],
    ['negative zero', 'int_value', -0, { intValue: 0n }],
    ['an integer beyond 2^53', 'int_value', 2 ** 60, { intValue: 2n ** 60n }],
    ['a large negative integer', 'int_value', -(2 ** 62), { intValue: -(2n ** 62n) }],
    ['a fraction', 'double_value', -1.5, { doubleValue: -1.5 }],
    ['an integer beyond int64', 'double_value', 2 ** 63, { doubleValue: 2 ** 63 }],
    ['infinity', 'double_value', Infinity, { doubleValue: Infinity }],
    ['NaN', 'double_value', NaN, { doubleValue: NaN }],
  ])('writes %s as %s', (_name, _field, value, expected) => {
    const [span] = roundTrip([{ ...clientSpan, attributes: { value } }]);
    expect(span?.attributes['value']).toEqual(expected);
  });

  it('gives the same bytes whatever the order of attributes and resource keys', () => {
    const reversed = (record: Readonly<Record<string, unknown>>): Record<string, never> =>
      Object.fromEntries(Object.entries(record).reverse()) as Record<string, never>;
    const forward = encodeExportTraceRequest(resource, scope, [serverSpan]);
    const backward = encodeExportTraceRequest(reversed(resource), scope, [
      { ...serverSpan, attributes: reversed(serverSpan.attributes) },
    ]);
    expect(Buffer.from(backward).equals(Buffer.from(forward))).toBe(true);
  });

  it('writes length prefixes of several bytes for long strings and many spans', () => {
    const long = 'é'.repeat(70_000);
    const spans = Array.from({ length: 1_000 }, (_, index): MeshSpan => ({
      ...serverSpan,
      spanId: index.toString(16).padStart(16, '0'),
      name: index === 500 ? long : `span ${index}`,
      attributes: { index, text: index === 999 ? long : 'x'.repeat(index % 200) },
    }));
    const decoded = roundTrip(spans);
    expect(decoded).toHaveLength(1_000);
    decoded.forEach((span, index) => {
      expect(span.spanId).toBe(index.toString(16).padStart(16, '0'));
      expect(span.attributes['index']).toEqual({ intValue: BigInt(index) });
    });
    expect(decoded[500]?.name).toBe(long);
    expect(decoded[999]?.attributes['text']).toEqual({ stringValue: long });
    expect(decoded[199]?.attributes['text']).toEqual({ stringValue: 'x'.repeat(199) });
  });

  it('writes the spans of a request in the order given, under one scope', () => {
    const request = decodeExportTraceRequest(
      encodeExportTraceRequest(resource, scope, [serverSpan, clientSpan, serverSpan]),
    );
    expect(request.resourceSpans[0]?.scopeSpans).toHaveLength(1);
    expect(spansOf(request).map((span) => span.kind)).toEqual([2, 3, 2]);
  });
});
