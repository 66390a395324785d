// Reading pod templates as untyped JSON. Injection accepts whatever a manifest holds, so every
// reader here is total: a field of the wrong shape reads as absent rather than throwing.

export type JsonObject = Readonly<Record<string, unknown>>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object at `value`, or an empty object when it is absent or not an object. */
export function objectOf(value: unknown): JsonObject {
  return isObject(value) ? value : {};
}

/** The array at `value`, or an empty array when it is absent or not an array. */
export function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? (value as readonly unknown[]) : [];
}

/** The string at `value`, or undefined. */
export function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** String-valued entries of a label or annotation map. */
export function stringMapOf(value: unknown): Readonly<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const [key, entry] of Object.entries(objectOf(value))) {
    if (typeof entry === 'string') result[key] = entry;
  }
  return result;
}

/**
 * A copy of `value` whose objects have their keys in code-point order, at every depth; arrays
 * keep their order. Used where NGINX Service Mesh printed Go maps, so the text is deterministic.
 */
export function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (!isObject(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(compareCodePoints)) {
    sorted[key] = sortKeysDeep(value[key]);
  }
  return sorted;
}

export function compareCodePoints(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}
