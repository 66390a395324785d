import {
  applyJsonPatch,
  createJsonPatch,
  escapePointerToken,
} from '../../src/manifests/json-patch';
import { seededRandom } from '../support/random';

function generate(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 2 ? 4 : 6));
  switch (pick) {
    case 0:
      return Math.floor(next() * 10);
    case 1:
      return ['a', 'b/c', 'd~e', ''][Math.floor(next() * 4)];
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4:
      return Array.from({ length: Math.floor(next() * 4) }, () => generate(next, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(next() * 4) }, (_, index) => [
          ['x', 'y/z', 'w~v', 'k'][index] ?? `k${index}`,
          generate(next, depth + 1),
        ]),
      );
  }
}

/** A variation of value: some keys changed, removed or added, arrays appended to or rewritten. */
function mutate(value: unknown, next: () => number): unknown {
  if (Array.isArray(value)) {
    const items = value as unknown[];
    if (next() < 0.5) return [...items, generate(next, 3)];
    return items.map((item) => (next() < 0.3 ? mutate(item, next) : item));
  }
  if (typeof value === 'object' && value !== null) {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const roll = next();
      if (roll < 0.2) continue;
      result[key] = roll < 0.5 ? mutate(item, next) : item;
    }
    if (next() < 0.3) result.added = generate(next, 3);
    return result;
  }
  return next() < 0.5 ? generate(next, 3) : value;
}

describe('createJsonPatch', () => {
  it('is empty for equal documents', () => {
    expect(createJsonPatch({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual([]);
  });

  it('appends to arrays item by item and escapes pointer tokens', () => {
    const before = { metadata: { annotations: {} }, spec: { containers: [{ name: 'app' }] } };
    const after = {
      metadata: { annotations: { 'injector.nsm.nginx.com/status': 'injected' } },
      spec: { containers: [{ name: 'app' }, { name: 'nginx-mesh-sidecar' }] },
    };
    expect(createJsonPatch(before, after)).toEqual([
      {
        op: 'add',
        path: '/metadata/annotations/injector.nsm.nginx.com~1status',
        value: 'injected',
      },
      { op: 'add', path: '/spec/containers/-', value: { name: 'nginx-mesh-sidecar' } },
    ]);
  });

  it('replaces an array whose existing items changed', () => {
    expect(createJsonPatch({ a: [1, 2] }, { a: [2, 1] })).toEqual([
      { op: 'replace', path: '/a', value: [2, 1] },
    ]);
  });

  it('turns any document into any variation of it (500 generated pairs)', () => {
    const next = seededRandom(20261126);
    for (let i = 0; i < 500; i += 1) {
      const before = generate(next, 0);
      const after = mutate(before, next);
      const patch = createJsonPatch(before, after);
      expect(applyJsonPatch(before, patch)).toEqual(after);
    }
  });

  it('escapes ~ before /', () => {
    expect(escapePointerToken('a~/b')).toBe('a~0~1b');
  });
});
