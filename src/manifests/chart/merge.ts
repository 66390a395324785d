// Variants of the same manifests → one template. The install plan is rendered once with every
// optional feature off (the base) and once per feature with it on; whatever a feature adds is
// kept under its condition, whatever it changes becomes a choice, whatever it removes is kept
// under the condition's negation. Lists align by name (containers, volumes, ports, args), so a
// feature that changes one field of a container changes only that field. Pure.

export type Json =
  null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

export interface Variant {
  /** The Helm condition under which this variant's output applies; undefined for the base. */
  readonly condition?: string;
  readonly value: Json;
}

export type Template =
  | { readonly kind: 'scalar'; readonly value: null | boolean | number | string }
  | { readonly kind: 'map'; readonly entries: readonly TemplateEntry[] }
  | { readonly kind: 'list'; readonly items: readonly TemplateItem[] }
  /** A string that holds a JSON document, templated inside. */
  | { readonly kind: 'json'; readonly node: Template }
  | {
      readonly kind: 'choice';
      readonly options: readonly { readonly condition: string; readonly node: Template }[];
      readonly otherwise: Template;
    };

export interface TemplateEntry {
  readonly key: string;
  readonly condition?: string;
  readonly node: Template;
}

export interface TemplateItem {
  readonly condition?: string;
  readonly node: Template;
}

/** One variant's value at a position, with the variant's index (0 is the base when present). */
interface Occurrence {
  readonly variant: number;
  readonly value: Json;
}

type Conditions = readonly (string | undefined)[];

const isMap = (value: Json): value is { readonly [key: string]: Json } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function jsonDocument(value: Json): Json | undefined {
  if (typeof value !== 'string' || !/^\s*[{[]/.test(value)) return undefined;
  try {
    return JSON.parse(value) as Json;
  } catch {
    return undefined;
  }
}

function or(conditions: readonly string[]): string {
  const unique = [...new Set(conditions)];
  return unique.length === 1 ? (unique[0] ?? '') : `or ${unique.map((c) => `(${c})`).join(' ')}`;
}

function and(conditions: readonly string[]): string {
  const unique = [...new Set(conditions)];
  return unique.length === 1 ? (unique[0] ?? '') : `and ${unique.map((c) => `(${c})`).join(' ')}`;
}

/**
 * When an element found in `present` (of the variants in `universe`, where its parent is) is
 * there: always, or under a condition.
 */
function presence(
  present: ReadonlySet<number>,
  universe: ReadonlySet<number>,
  conditions: Conditions,
): string | undefined {
  if (present.size === universe.size) return undefined;
  const hasBase = (set: ReadonlySet<number>): boolean =>
    [...set].some((i) => conditions[i] === undefined);
  if (hasBase(present)) {
    const absentIn = [...universe].filter((i) => !present.has(i));
    return and(absentIn.map((i) => `not (${conditions[i] ?? 'true'})`));
  }
  return or([...present].map((i) => conditions[i] ?? 'true'));
}

function identityOf(value: Json): string {
  if (isMap(value)) {
    const metadata = value.metadata ?? null;
    if (typeof value.kind === 'string' && isMap(metadata)) {
      return `object:${value.kind}/${JSON.stringify(metadata.namespace ?? '')}/${JSON.stringify(metadata.name ?? '')}`;
    }
    if (typeof value.name === 'string') return `name:${value.name}`;
  }
  return `json:${JSON.stringify(value)}`;
}

/** Keys (or list identities) of every variant in one order: the first variant's, then additions. */
function mergedOrder(lists: readonly (readonly string[])[]): string[] {
  const order: string[] = [];
  for (const list of lists) {
    const own = new Set(list);
    let after = -1;
    for (const key of list) {
      const found = order.indexOf(key);
      if (found >= 0) {
        after = found;
        continue;
      }
      // After what earlier variants added here: features are listed in the order their output is.
      while (after + 1 < order.length && !own.has(order[after + 1] ?? '')) after += 1;
      order.splice(after + 1, 0, key);
      after += 1;
    }
  }
  return order;
}

function mergeMaps(occurrences: readonly Occurrence[], conditions: Conditions): Template {
  const universe = new Set(occurrences.map((o) => o.variant));
  const maps = occurrences.map((o) => o.value as { readonly [key: string]: Json });
  const keys = mergedOrder(maps.map((map) => Object.keys(map)));
  const entries = keys.map((key): TemplateEntry => {
    const here = occurrences.filter((o) => key in (o.value as object));
    const present = new Set(here.map((o) => o.variant));
    const node = merge(
      here.map((o) => ({
        variant: o.variant,
        value: (o.value as { [k: string]: Json })[key] ?? null,
      })),
      conditions,
    );
    const condition = presence(present, universe, conditions);
    return condition === undefined ? { key, node } : { key, condition, node };
  });
  return { kind: 'map', entries };
}

function keyedItems(list: readonly Json[]): [string, Json][] {
  const seen = new Map<string, number>();
  return list.map((item) => {
    const base = identityOf(item);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return [count === 0 ? base : `${base}#${count}`, item];
  });
}

function mergeLists(occurrences: readonly Occurrence[], conditions: Conditions): Template {
  const universe = new Set(occurrences.map((o) => o.variant));
  const keyed = occurrences.map((o) => ({
    variant: o.variant,
    items: new Map(keyedItems(o.value as readonly Json[])),
  }));
  const order = mergedOrder(keyed.map((k) => [...k.items.keys()]));
  const items = order.map((id): TemplateItem => {
    const here = keyed.filter((k) => k.items.has(id));
    const node = merge(
      here.map((k) => ({ variant: k.variant, value: k.items.get(id) ?? null })),
      conditions,
    );
    const condition = presence(new Set(here.map((k) => k.variant)), universe, conditions);
    return condition === undefined ? { node } : { condition, node };
  });
  return { kind: 'list', items };
}

function choice(occurrences: readonly Occurrence[], conditions: Conditions): Template {
  const groups = new Map<string, Occurrence[]>();
  for (const occurrence of occurrences) {
    const key = JSON.stringify(occurrence.value);
    groups.set(key, [...(groups.get(key) ?? []), occurrence]);
  }
  const base = occurrences.find((o) => conditions[o.variant] === undefined) ?? occurrences[0];
  const baseKey = JSON.stringify(base?.value ?? null);
  const single = (value: Json): Template => merge([{ variant: 0, value }], conditions);
  const options = [...groups.entries()]
    .filter(([key]) => key !== baseKey)
    .map(([, group]) => ({
      condition: or(group.map((o) => conditions[o.variant] ?? 'true')),
      node: single(group[0]?.value ?? null),
    }));
  return { kind: 'choice', options, otherwise: single(base?.value ?? null) };
}

function merge(occurrences: readonly Occurrence[], conditions: Conditions): Template {
  const values = occurrences.map((o) => o.value);
  const documents = values.map(jsonDocument);
  if (documents.every((document) => document !== undefined)) {
    const parsed = occurrences.map((o, i) => ({ variant: o.variant, value: documents[i] ?? null }));
    return { kind: 'json', node: merge(parsed, conditions) };
  }
  if (values.every(isMap)) return mergeMaps(occurrences, conditions);
  if (values.every((value) => Array.isArray(value))) return mergeLists(occurrences, conditions);
  // Maps and lists all alike were merged above; equal values here are scalars.
  const value = values[0] ?? null;
  const first = JSON.stringify(value);
  const scalar = value === null || typeof value !== 'object';
  if (scalar && values.every((each) => JSON.stringify(each) === first)) {
    return { kind: 'scalar', value };
  }
  return choice(occurrences, conditions);
}

/** One template for all variants: the base's output, with each variant's differences under its condition. */
export function mergeVariants(variants: readonly Variant[]): Template {
  const conditions = variants.map((variant) => variant.condition);
  return merge(
    variants.map((variant, index) => ({ variant: index, value: variant.value })),
    conditions,
  );
}
