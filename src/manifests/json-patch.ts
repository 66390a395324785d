// RFC 6902 JSON Patch from the difference of two JSON documents, as admission webhooks answer.
// Pure. Objects are compared key by key; an array that changed is replaced whole unless the new
// one only appends to the old (then the appended items are added one by one), which keeps
// patches small for injection (containers appended) and never depends on element identity.

export type JsonPatchOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

/** Escapes one reference token of a JSON Pointer (RFC 6901). */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => key in b && deepEqual(a[key], b[key]))
    );
  }
  return false;
}

function diffArrays(
  path: string,
  before: readonly unknown[],
  after: readonly unknown[],
  out: JsonPatchOperation[],
): void {
  const appendsOnly =
    after.length >= before.length && before.every((item, index) => deepEqual(item, after[index]));
  if (!appendsOnly) {
    out.push({ op: 'replace', path, value: after });
    return;
  }
  for (const item of after.slice(before.length))
    out.push({ op: 'add', path: `${path}/-`, value: item });
}

function diffObjects(
  path: string,
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
  out: JsonPatchOperation[],
): void {
  for (const key of Object.keys(before)) {
    if (!(key in after)) out.push({ op: 'remove', path: `${path}/${escapePointerToken(key)}` });
  }
  for (const key of Object.keys(after)) {
    const childPath = `${path}/${escapePointerToken(key)}`;
    if (!(key in before)) out.push({ op: 'add', path: childPath, value: after[key] });
    else diffValues(childPath, before[key], after[key], out);
  }
}

function diffValues(
  path: string,
  before: unknown,
  after: unknown,
  out: JsonPatchOperation[],
): void {
  if (deepEqual(before, after)) return;
  if (isObject(before) && isObject(after)) diffObjects(path, before, after, out);
  else if (Array.isArray(before) && Array.isArray(after)) diffArrays(path, before, after, out);
  else out.push({ op: 'replace', path, value: after });
}

/** The operations that turn before into after. */
export function createJsonPatch(before: unknown, after: unknown): JsonPatchOperation[] {
  const operations: JsonPatchOperation[] = [];
  diffValues('', before, after, operations);
  return operations;
}

/** Applies a patch made of add/replace/remove operations; used to check patches in tests and reviews. */
export function applyJsonPatch(
  document: unknown,
  operations: readonly JsonPatchOperation[],
): unknown {
  let result: unknown = structuredClone(document);
  for (const operation of operations) {
    const tokens = operation.path
      .split('/')
      .slice(1)
      .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (tokens.length === 0) {
      if (operation.op === 'remove') throw new Error('cannot remove the whole document');
      result = structuredClone(operation.value);
      continue;
    }
    const last = tokens.pop() ?? '';
    let parent: unknown = result;
    for (const token of tokens) {
      parent = Array.isArray(parent)
        ? parent[Number(token)]
        : isObject(parent)
          ? parent[token]
          : undefined;
      if (parent === undefined) throw new Error(`path ${operation.path} does not exist`);
    }
    applyOne(parent, last, operation);
  }
  return result;
}

function applyOne(parent: unknown, last: string, operation: JsonPatchOperation): void {
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (operation.op === 'add') parent.splice(index, 0, structuredClone(operation.value));
    else if (operation.op === 'replace') parent[index] = structuredClone(operation.value);
    else parent.splice(index, 1);
    return;
  }
  if (!isObject(parent)) throw new Error(`cannot apply ${operation.op} at ${operation.path}`);
  if (operation.op === 'remove') delete parent[last];
  else parent[last] = structuredClone(operation.value);
}
