// DER, the subset X.509 certificates and PKCS #10 requests use: enough to build a certificate
// from a template and to read the fields the registrar checks. Pure and total: malformed input
// gives a DerError naming what was wrong, never an out-of-bounds read.

/** A DER element: tag byte, where it starts and ends in its buffer, and its contents. */
export interface DerNode {
  readonly tag: number;
  /** The whole element (tag, length and contents). */
  readonly bytes: Uint8Array;
  readonly contents: Uint8Array;
}

export class DerError extends Error {}

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Nesting deeper than this is not X.509 and is refused, which bounds every walk. */
const MAX_ELEMENTS = 4096;

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const size = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function lengthBytes(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One element with the given tag around the concatenated contents. */
export function tlv(tag: number, ...contents: readonly Uint8Array[]): Uint8Array {
  const body = concat(contents);
  return concat([Uint8Array.of(tag), lengthBytes(body.length), body]);
}

export const sequence = (...items: readonly Uint8Array[]): Uint8Array =>
  tlv(TAG.sequence, ...items);
export const set = (...items: readonly Uint8Array[]): Uint8Array => tlv(TAG.set, ...items);
/** [n] EXPLICIT: a constructed context-specific wrapper. */
export const explicit = (n: number, item: Uint8Array): Uint8Array => tlv(0xa0 | n, item);
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(TAG.octetString, bytes);
export const bitString = (bytes: Uint8Array): Uint8Array =>
  tlv(TAG.bitString, Uint8Array.of(0), bytes);
export const booleanTrue = (): Uint8Array => tlv(TAG.boolean, Uint8Array.of(0xff));
export const derNull = (): Uint8Array => tlv(TAG.null);

const encoder = new TextEncoder();
export const utf8String = (text: string): Uint8Array => tlv(TAG.utf8String, encoder.encode(text));
export const ia5 = (tag: number, text: string): Uint8Array => tlv(tag, encoder.encode(text));

/** A non-negative INTEGER from its big-endian magnitude (a leading zero is added when needed). */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start += 1;
  const trimmed = magnitude.subarray(start);
  const pad = (trimmed[0] ?? 0) >= 0x80 || trimmed.length === 0;
  return tlv(TAG.integer, pad ? Uint8Array.of(0) : new Uint8Array(0), trimmed);
}

export function smallInteger(value: number): Uint8Array {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return unsignedInteger(Uint8Array.from(bytes));
}

/** An OBJECT IDENTIFIER from dotted text ("2.5.29.17"). */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const groups: number[] = [arc % 128];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) {
      groups.unshift((value % 128) | 0x80);
    }
    bytes.push(...groups);
  }
  return tlv(TAG.oid, Uint8Array.from(bytes));
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** UTCTime until 2049, GeneralizedTime from 2050, as RFC 5280 requires. */
export function time(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds()) +
    'Z';
  return year < 2050
    ? tlv(TAG.utcTime, encoder.encode(pad2(year % 100) + rest))
    : tlv(TAG.generalizedTime, encoder.encode(String(year) + rest));
}

// ---- reading ----

function readLength(bytes: Uint8Array, at: number): { length: number; next: number } {
  const first = bytes[at];
  if (first === undefined) throw new DerError('truncated length');
  if (first < 0x80) return { length: first, next: at + 1 };
  const count = first & 0x7f;
  if (count === 0 || count > 4) throw new DerError('unsupported length encoding');
  let length = 0;
  for (let i = 1; i <= count; i += 1) {
    const byte = bytes[at + i];
    if (byte === undefined) throw new DerError('truncated length');
    length = length * 256 + byte;
  }
  return { length, next: at + 1 + count };
}

/** Reads the element starting at offset; throws DerError when it does not fit. */
export function readNode(bytes: Uint8Array, offset = 0): DerNode {
  const tag = bytes[offset];
  if (tag === undefined) throw new DerError('truncated element');
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in X.509');
  const { length, next } = readLength(bytes, offset + 1);
  const end = next + length;
  if (end > bytes.length) throw new DerError('element longer than its container');
  return { tag, bytes: bytes.subarray(offset, end), contents: bytes.subarray(next, end) };
}

/** The elements inside a constructed element, in order. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let offset = 0;
  while (offset < node.contents.length) {
    if (out.length >= MAX_ELEMENTS) throw new DerError('too many elements');
    const child = readNode(node.contents, offset);
    out.push(child);
    offset += child.bytes.length;
  }
  return out;
}

/** Reads exactly one element spanning the whole buffer. */
export function readWhole(bytes: Uint8Array, what: string): DerNode {
  const node = readNode(bytes);
  if (node.bytes.length !== bytes.length) throw new DerError(`${what}: trailing bytes`);
  return node;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node?.tag !== tag) throw new DerError(`${what}: unexpected structure`);
  return node;
}

/** Dotted text of an OBJECT IDENTIFIER element. */
export function readOid(node: DerNode | undefined, what: string): string {
  const { contents } = expectTag(node, TAG.oid, what);
  const arcs: number[] = [];
  let value = 0;
  for (const byte of contents) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  const [first = 0, ...rest] = arcs;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...rest].join('.');
}

const decoder = new TextDecoder();
export const readText = (node: DerNode): string => decoder.decode(node.contents);

/** The date of a UTCTime or GeneralizedTime element ("YYMMDDHHMMSSZ" or "YYYYMMDDHHMMSSZ"). */
export function readTime(node: DerNode | undefined, what: string): Date {
  const text = node === undefined ? '' : readText(node);
  const match = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (match === null || (node?.tag !== TAG.utcTime && node?.tag !== TAG.generalizedTime)) {
    throw new DerError(`${what}: not a UTC time`);
  }
  const [, y = '', mo = '', d = '', h = '', mi = '', s = ''] = match;
  const year = y.length === 2 ? (Number(y) < 50 ? 2000 : 1900) + Number(y) : Number(y);
  return new Date(Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
}

export { concat };
