// Spans in OTLP's protobuf encoding: the bytes of an
// opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest, the body of both OTLP/gRPC's
// TraceService/Export and OTLP/HTTP's POST /v1/traces. Written by hand from the field numbers
// of opentelemetry-proto (collector/trace/v1, trace/v1, resource/v1, common/v1): the agent
// sends one message type and needs no protobuf library for it. Pure: spans in, bytes out; the
// same input gives the same bytes (attributes are written sorted by key).
import type { MeshSpan, SpanAttribute, TraceResource } from './span';

/** The instrumentation scope the spans are reported under (InstrumentationScope). */
export interface InstrumentationScope {
  readonly name: string;
  readonly version: string;
}

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;

/** Field numbers, by message (opentelemetry-proto). */
const EXPORT_REQUEST = { resourceSpans: 1 } as const;
const RESOURCE_SPANS = { resource: 1, scopeSpans: 2 } as const;
const RESOURCE = { attributes: 1 } as const;
const SCOPE_SPANS = { scope: 1, spans: 2 } as const;
const SCOPE = { name: 1, version: 2 } as const;
const SPAN = {
  traceId: 1,
  spanId: 2,
  parentSpanId: 4,
  name: 5,
  kind: 6,
  startTimeUnixNano: 7,
  endTimeUnixNano: 8,
  attributes: 9,
  status: 15,
} as const;
const STATUS = { message: 2, code: 3 } as const;
const KEY_VALUE = { key: 1, value: 2 } as const;
const ANY_VALUE = { stringValue: 1, boolValue: 2, intValue: 3, doubleValue: 4 } as const;

/** Span.SpanKind. */
const SPAN_KIND: Readonly<Record<MeshSpan['kind'], number>> = { server: 2, client: 3 };
/** Status.StatusCode. */
const STATUS_CODE: Readonly<Record<MeshSpan['status'], number>> = { unset: 0, ok: 1, error: 2 };

/** int64's range: an integer outside it is written as a double. */
const INT64_MIN = -(2 ** 63);
const INT64_LIMIT = 2 ** 63;

const utf8 = new TextEncoder();

/** The value of a hex digit, 0 for any other character. */
function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return 0;
}

/**
 * One message's bytes in a buffer that grows as needed. A nested message is written in place
 * and its length prefix inserted in front of it afterwards, so the whole request takes one
 * buffer and no intermediate copies per field.
 */
class ProtoWriter {
  private buffer = new Uint8Array(1024);
  private view = new DataView(this.buffer.buffer);
  private length = 0;

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  /** A non-negative integer below 2^53. */
  private varint(value: number): void {
    this.reserve(8);
    let rest = value;
    while (rest > 127) {
      this.buffer[this.length++] = (rest % 128) | 128;
      rest = Math.floor(rest / 128);
    }
    this.buffer[this.length++] = rest;
  }

  /** An unsigned 64-bit integer (take negative int64s through BigInt.asUintN first). */
  private varint64(value: bigint): void {
    this.reserve(10);
    let rest = value;
    while (rest > 127n) {
      this.buffer[this.length++] = Number(rest & 127n) | 128;
      rest >>= 7n;
    }
    this.buffer[this.length++] = Number(rest);
  }

  private tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  uint(field: number, value: number): void {
    this.tag(field, VARINT);
    this.varint(value);
  }

  /** int64: a negative value takes ten bytes, its two's complement. */
  int64(field: number, value: number): void {
    this.tag(field, VARINT);
    if (value >= 0 && Number.isSafeInteger(value)) this.varint(value);
    else this.varint64(BigInt.asUintN(64, BigInt(value)));
  }

  bool(field: number, value: boolean): void {
    this.uint(field, value ? 1 : 0);
  }

  double(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.reserve(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
  }

  /** fixed64: the low 64 bits of value, little-endian. */
  fixed64(field: number, value: bigint): void {
    this.tag(field, FIXED64);
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt.asUintN(64, value), true);
    this.length += 8;
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(value.length);
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  /** UTF-8; ASCII (ids, methods, paths, most attributes) is written without an encoder. */
  string(field: number, value: string): void {
    for (let index = 0; index < value.length; index++) {
      if (value.charCodeAt(index) > 127) {
        this.bytes(field, utf8.encode(value));
        return;
      }
    }
    this.tag(field, LENGTH_DELIMITED);
    this.varint(value.length);
    this.reserve(value.length);
    for (let index = 0; index < value.length; index++) {
      this.buffer[this.length++] = value.charCodeAt(index);
    }
  }

  /** Bytes from hex, two digits a byte; a digit that is not hex counts as 0. */
  hex(field: number, value: string): void {
    const size = value.length >> 1;
    this.tag(field, LENGTH_DELIMITED);
    this.varint(size);
    this.reserve(size);
    for (let index = 0; index < size; index++) {
      this.buffer[this.length++] =
        nibble(value.charCodeAt(2 * index)) * 16 + nibble(value.charCodeAt(2 * index + 1));
    }
  }

  /**
   * A nested message: what body writes, prefixed by its tag and length. The body is written
   * first and moved up by the length's size once it is known (one copy, no allocation).
   */
  message(field: number, body: () => void): void {
    this.tag(field, LENGTH_DELIMITED);
    const start = this.length;
    body();
    const size = this.length - start;
    let prefix = 1;
    for (let rest = size; rest > 127; rest = Math.floor(rest / 128)) prefix += 1;
    this.reserve(prefix);
    this.buffer.copyWithin(start + prefix, start, this.length);
    let at = start;
    let rest = size;
    while (rest > 127) {
      this.buffer[at++] = (rest % 128) | 128;
      rest = Math.floor(rest / 128);
    }
    this.buffer[at] = rest;
    this.length += prefix;
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/**
 * AnyValue: strings as string_value, booleans as bool_value, integers in int64's range as
 * int_value, other numbers (fractions, larger integers, NaN, infinities) as double_value.
 */
function writeAnyValue(writer: ProtoWriter, value: SpanAttribute): void {
  if (typeof value === 'string') writer.string(ANY_VALUE.stringValue, value);
  else if (typeof value === 'boolean') writer.bool(ANY_VALUE.boolValue, value);
  else if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_LIMIT)
    writer.int64(ANY_VALUE.intValue, value);
  else writer.double(ANY_VALUE.doubleValue, value);
}

/** Repeated KeyValue, sorted by key. */
function writeAttributes(
  writer: ProtoWriter,
  field: number,
  attributes: Readonly<Record<string, SpanAttribute>>,
): void {
  for (const key of Object.keys(attributes).sort()) {
    const value = attributes[key];
    if (value === undefined) continue;
    writer.message(field, () => {
      if (key !== '') writer.string(KEY_VALUE.key, key);
      writer.message(KEY_VALUE.value, () => writeAnyValue(writer, value));
    });
  }
}

function writeSpan(writer: ProtoWriter, span: MeshSpan): void {
  writer.hex(SPAN.traceId, span.traceId);
  writer.hex(SPAN.spanId, span.spanId);
  if (span.parentSpanId !== undefined && span.parentSpanId !== '')
    writer.hex(SPAN.parentSpanId, span.parentSpanId);
  if (span.name !== '') writer.string(SPAN.name, span.name);
  writer.uint(SPAN.kind, SPAN_KIND[span.kind]);
  if (span.startUnixNano !== 0n) writer.fixed64(SPAN.startTimeUnixNano, span.startUnixNano);
  if (span.endUnixNano !== 0n) writer.fixed64(SPAN.endTimeUnixNano, span.endUnixNano);
  writeAttributes(writer, SPAN.attributes, span.attributes);
  const code = STATUS_CODE[span.status];
  const message = span.statusMessage ?? '';
  if (code !== 0 || message !== '') {
    writer.message(SPAN.status, () => {
      if (message !== '') writer.string(STATUS.message, message);
      if (code !== 0) writer.uint(STATUS.code, code);
    });
  }
}

/**
 * The protobuf bytes of an ExportTraceServiceRequest carrying spans under one resource and one
 * instrumentation scope. Fields at their proto3 default (an absent parent, a zero time, status
 * unset without a message) are left out, as protobuf encoders do; attribute values, members of
 * a oneof, always appear. Ids are
 * expected as lowercase hex (a digit that is not hex is written as 0), times as unsigned
 * nanoseconds since the Unix epoch (their low 64 bits are written).
 */
export function encodeExportTraceRequest(
  resource: TraceResource,
  scope: InstrumentationScope,
  spans: readonly MeshSpan[],
): Uint8Array {
  const writer = new ProtoWriter();
  writer.message(EXPORT_REQUEST.resourceSpans, () => {
    writer.message(RESOURCE_SPANS.resource, () =>
      writeAttributes(writer, RESOURCE.attributes, resource),
    );
    writer.message(RESOURCE_SPANS.scopeSpans, () => {
      writer.message(SCOPE_SPANS.scope, () => {
        if (scope.name !== '') writer.string(SCOPE.name, scope.name);
        if (scope.version !== '') writer.string(SCOPE.version, scope.version);
      });
      for (const span of spans) writer.message(SCOPE_SPANS.spans, () => writeSpan(writer, span));
    });
  });
  return writer.finish();
}
