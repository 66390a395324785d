// How deep a parsed YAML or JSON value nests. Parsers keep up with any depth, but the code that
// walks a value afterwards (injection, printing) recurses, and a value nested thousands deep
// would overflow the stack there. Pure.

/**
 * Whether value nests more than max levels of objects and arrays (a scalar is 0 deep, [] and {}
 * are 1). Walks without recursion and stops at the first branch over max, so any input, cyclic
 * ones included, is answered in time linear in what it visits.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: { readonly value: unknown; readonly depth: number }[] = [{ value, depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > max) return true;
    const children = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) stack.push({ value: child, depth });
  }
  return false;
}
