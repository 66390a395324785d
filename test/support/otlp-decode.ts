// A small protobuf reader for the tests: decodes an ExportTraceServiceRequest the way a collector
// would, from opentelemetry-proto's field numbers, independently of the agent's encoder. Strict:
// a known field with an unexpected wire type, a truncated field or trailing bytes throw.

/** A raw field: its number, wire type and value (varints and fixed64s as unsigned bigints). */
export interface RawField {
  readonly field: number;
  readonly wireType: number;
  readonly varint?: bigint;
  readonly fixed64?: bigint;
  readonly bytes?: Uint8Array;
}

export type DecodedValue =
  | { readonly stringValue: string }
  | { readonly boolValue: boolean }
  | { readonly intValue: bigint }
  | { readonly doubleValue: number };

export interface DecodedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** undefined when the field is absent. */
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly attributes: Readonly<Record<string, DecodedValue>>;
  /** undefined when the field is absent. */
  readonly status: { readonly message: string; readonly code: number } | undefined;
}

export interface DecodedScopeSpans {
  readonly scope: { readonly name: string; readonly version: string } | undefined;
  readonly spans: readonly DecodedSpan[];
}

export interface DecodedResourceSpans {
  readonly resource: Readonly<Record<string, DecodedValue>> | undefined;
  readonly scopeSpans: readonly DecodedScopeSpans[];
}

export interface DecodedExportRequest {
  readonly resourceSpans: readonly DecodedResourceSpans[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readVarint(bytes: Uint8Array, start: number): { value: bigint; next: number } {
  let value = 0n;
  for (let index = 0; index < 10; index++) {
    const byte = bytes[start + index];
    if (byte === undefined) throw new Error(`truncated varint at ${start}`);
    value |= BigInt(byte & 127) << BigInt(7 * index);
    if (byte < 128) return { value, next: start + index + 1 };
  }
  throw new Error(`varint longer than 10 bytes at ${start}`);
}

/** Every field of one message, in order. */
export function readFields(bytes: Uint8Array): RawField[] {
  const fields: RawField[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const tag = readVarint(bytes, offset);
    offset = tag.next;
    const field = Number(tag.value >> 3n);
    const wireType = Number(tag.value & 7n);
    if (wireType === 0) {
      const value = readVarint(bytes, offset);
      offset = value.next;
      fields.push({ field, wireType, varint: value.value });
    } else if (wireType === 1) {
      if (offset + 8 > bytes.length) throw new Error(`truncated fixed64 at ${offset}`);
      const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
      fields.push({ field, wireType, fixed64: view.getBigUint64(0, true) });
      offset += 8;
    } else if (wireType === 2) {
      const length = readVarint(bytes, offset);
      offset = length.next;
      const end = offset + Number(length.value);
      if (end > bytes.length) throw new Error(`truncated bytes field ${field} at ${offset}`);
      fields.push({ field, wireType, bytes: bytes.subarray(offset, end) });
      offset = end;
    } else {
      throw new Error(`unexpected wire type ${wireType} of field ${field}`);
    }
  }
  return fields;
}

function expectBytes(raw: RawField): Uint8Array {
  if (raw.bytes === undefined) throw new Error(`field ${raw.field}: expected length-delimited`);
  return raw.bytes;
}

function expectVarint(raw: RawField): bigint {
  if (raw.varint === undefined) throw new Error(`field ${raw.field}: expected varint`);
  return raw.varint;
}

function expectFixed64(raw: RawField): bigint {
  if (raw.fixed64 === undefined) throw new Error(`field ${raw.field}: expected fixed64`);
  return raw.fixed64;
}

const text = (raw: RawField): string => utf8.decode(expectBytes(raw));
const hex = (raw: RawField): string => Buffer.from(expectBytes(raw)).toString('hex');

function decodeAnyValue(bytes: Uint8Array): DecodedValue {
  const fields = readFields(bytes);
  if (fields.length !== 1) throw new Error(`AnyValue with ${fields.length} fields`);
  const [raw] = fields as [RawField];
  switch (raw.field) {
    case 1:
      return { stringValue: text(raw) };
    case 2:
      return { boolValue: expectVarint(raw) !== 0n };
    case 3:
      return { intValue: BigInt.asIntN(64, expectVarint(raw)) };
    case 4: {
      const view = new DataView(new ArrayBuffer(8));
      view.setBigUint64(0, expectFixed64(raw), true);
      return { doubleValue: view.getFloat64(0, true) };
    }
    default:
      throw new Error(`unexpected AnyValue field ${raw.field}`);
  }
}

/** Repeated KeyValue as an object; a repeated key throws. */
function decodeKeyValues(raws: readonly RawField[]): Record<string, DecodedValue> {
  const result: Record<string, DecodedValue> = {};
  for (const raw of raws) {
    let key = '';
    let value: DecodedValue | undefined;
    for (const inner of readFields(expectBytes(raw))) {
      if (inner.field === 1) key = text(inner);
      else if (inner.field === 2) value = decodeAnyValue(expectBytes(inner));
    }
    if (value === undefined) throw new Error(`attribute "${key}" without a value`);
    if (key in result) throw new Error(`attribute "${key}" repeated`);
    result[key] = value;
  }
  return result;
}

/** The fields of a message by number, each list in order. */
function byNumber(bytes: Uint8Array): Map<number, RawField[]> {
  const fields = new Map<number, RawField[]>();
  for (const raw of readFields(bytes))
    fields.set(raw.field, [...(fields.get(raw.field) ?? []), raw]);
  return fields;
}

/** The last occurrence of a singular field, as protobuf parsers take it. */
function last(fields: Map<number, RawField[]>, field: number): RawField | undefined {
  return fields.get(field)?.at(-1);
}

function decodeStatus(bytes: Uint8Array): { message: string; code: number } {
  const fields = byNumber(bytes);
  const message = last(fields, 2);
  const code = last(fields, 3);
  return {
    message: message === undefined ? '' : text(message),
    code: code === undefined ? 0 : Number(expectVarint(code)),
  };
}

function decodeSpan(bytes: Uint8Array): DecodedSpan {
  const fields = byNumber(bytes);
  const field = (number: number): RawField | undefined => last(fields, number);
  const get = <T>(number: number, read: (raw: RawField) => T, fallback: T): T => {
    const raw = field(number);
    return raw === undefined ? fallback : read(raw);
  };
  const status = field(15);
  return {
    traceId: get(1, hex, ''),
    spanId: get(2, hex, ''),
    parentSpanId: get<string | undefined>(4, hex, undefined),
    name: get(5, text, ''),
    kind: get(6, (raw) => Number(expectVarint(raw)), 0),
    startTimeUnixNano: get(7, expectFixed64, 0n),
    endTimeUnixNano: get(8, expectFixed64, 0n),
    attributes: decodeKeyValues(fields.get(9) ?? []),
    status: status === undefined ? undefined : decodeStatus(expectBytes(status)),
  };
}

function decodeScopeSpans(bytes: Uint8Array): DecodedScopeSpans {
  const fields = byNumber(bytes);
  const scope = last(fields, 1);
  let decodedScope: DecodedScopeSpans['scope'];
  if (scope !== undefined) {
    const scopeFields = byNumber(expectBytes(scope));
    const name = last(scopeFields, 1);
    const version = last(scopeFields, 2);
    decodedScope = {
      name: name === undefined ? '' : text(name),
      version: version === undefined ? '' : text(version),
    };
  }
  return {
    scope: decodedScope,
    spans: (fields.get(2) ?? []).map((raw) => decodeSpan(expectBytes(raw))),
  };
}

function decodeResourceSpans(bytes: Uint8Array): DecodedResourceSpans {
  const fields = byNumber(bytes);
  const resource = last(fields, 1);
  return {
    resource:
      resource === undefined
        ? undefined
        : decodeKeyValues(byNumber(expectBytes(resource)).get(1) ?? []),
    scopeSpans: (fields.get(2) ?? []).map((raw) => decodeScopeSpans(expectBytes(raw))),
  };
}

/** An ExportTraceServiceRequest, decoded from its protobuf bytes. */
export function decodeExportTraceRequest(bytes: Uint8Array): DecodedExportRequest {
  return {
    resourceSpans: (byNumber(bytes).get(1) ?? []).map((raw) =>
      decodeResourceSpans(expectBytes(raw)),
    ),
  };
}

/** Every span of a request, in order. */
export function spansOf(request: DecodedExportRequest): DecodedSpan[] {
  return request.resourceSpans.flatMap((resource) =>
    resource.scopeSpans.flatMap((scope) => scope.spans),
  );
}
