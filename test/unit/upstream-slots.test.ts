// Endpoints that change without a reload (src/render/sidecar/upstream-slots.ts): how many slots an
// upstream gets, how a previous count is kept, and the members file a model gives.
import { renderSidecarConfig } from '../../src/render/sidecar';
import {
  MIN_UPSTREAM_SLOTS,
  slotCount,
  upstreamSlots,
} from '../../src/render/sidecar/upstream-slots';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { endpoint, shopContext, shopSnapshot } from '../support/sidecar-snapshots';

/** shop/api with n endpoints 10.1.9.1… */
function apiWith(n: number): MeshSnapshot {
  const base = shopSnapshot();
  const api = base.services['shop/api'];
  if (api === undefined) throw new Error('shop/api missing');
  return {
    ...base,
    services: {
      ...base.services,
      'shop/api': {
        ...api,
        endpoints: Array.from({ length: n }, (_, index) =>
          endpoint(`10.1.9.${index + 1}`, { http: 8080 }, `shop/api-${index}`, 'shop/api'),
        ),
      },
    },
  };
}

const apiSlots = (text: string): number => {
  const block = /upstream mesh_shop__api_8080 \{([^}]*)\}/.exec(text)?.[1] ?? '';
  return block.split('\n').filter((line) => line.includes('server 127.0.0.1:1 ')).length;
};

describe('slotCount', () => {
  it('gives twice the members rounded up to a power of two, at least the minimum', () => {
    expect(MIN_UPSTREAM_SLOTS).toBe(4);
    expect([1, 2, 3, 4, 5, 8, 9, 100].map((n) => slotCount(n))).toEqual([
      4, 4, 8, 8, 16, 16, 32, 256,
    ]);
  });

  it('gives no slots for no members unless some were there before', () => {
    expect(slotCount(0)).toBe(0);
    expect(slotCount(0, 4)).toBe(4);
  });

  it('keeps the previous count while the members fit it and it is at most 4x what they need', () => {
    expect(slotCount(3, 4)).toBe(4);
    expect(slotCount(1, 16)).toBe(16);
    expect(slotCount(1, 32)).toBe(4);
    expect(slotCount(5, 4)).toBe(16);
    expect(slotCount(8, 8)).toBe(8);
    expect(slotCount(9, 8)).toBe(32);
  });

  it('counts primary and backup servers apart', () => {
    const servers = [
      { address: 'a:1', backup: false },
      { address: 'b:1', backup: false },
      { address: 'c:1', backup: false },
      { address: 'd:1', backup: true },
    ];
    expect(upstreamSlots(servers)).toEqual({ primary: 8, backup: 4 });
    expect(upstreamSlots(servers.slice(0, 3), { primary: 4, backup: 0 })).toEqual({
      primary: 4,
      backup: 0,
    });
    expect(upstreamSlots(servers.slice(0, 1), { primary: 8, backup: 4 })).toEqual({
      primary: 8,
      backup: 4,
    });
  });
});

describe('the rendered configuration and members file', () => {
  it('names no endpoint address in the configuration: they are in the members file', () => {
    const rendered = renderSidecarConfig(apiWith(3), shopContext());
    expect(rendered.text).not.toContain('10.1.9.');
    expect(rendered.members).toContain(
      'upstream mesh_shop__api_8080 10.1.9.1:8080 10.1.9.2:8080 10.1.9.3:8080\n',
    );
    expect(rendered.members).toContain(
      'upstream mesh_shop__api_8080_fresh 10.1.9.1:8080 10.1.9.2:8080 10.1.9.3:8080\n',
    );
    // addressed directly, an endpoint goes where the Service's ClusterIP goes
    const hop = /map \$mesh_original_dst \$mesh_outbound \{[^}]*10\.96\.0\.11:8080 (\S+);/.exec(
      rendered.text,
    )?.[1];
    expect(hop).toMatch(/^127\.\d+\.\d+\.\d+:8889$/);
    expect(rendered.members).toContain(`map outbound 10.1.9.2:8080 ${hop ?? ''}\n`);
    expect(rendered.slots.get('mesh_shop__api_8080')).toEqual({ primary: 8, backup: 0 });
  });

  it('renders the same text while endpoints come and go within the slots of the text in force', () => {
    let slots = renderSidecarConfig(apiWith(2), shopContext()).slots;
    const first = renderSidecarConfig(apiWith(2), shopContext()).text;
    const members = new Set<string>();
    for (const n of [3, 4, 3, 1, 2, 4]) {
      const rendered = renderSidecarConfig(apiWith(n), { ...shopContext(), upstreamSlots: slots });
      expect(rendered.text).toBe(first);
      members.add(rendered.members);
      slots = rendered.slots;
    }
    expect(members.size).toBe(4);
    // without the slots in force, 3 endpoints would need a new text (8 slots)
    expect(apiSlots(renderSidecarConfig(apiWith(3), shopContext()).text)).toBe(8);
    expect(apiSlots(first)).toBe(4);
    // more than the slots hold: a new text with room again
    const grown = renderSidecarConfig(apiWith(5), { ...shopContext(), upstreamSlots: slots });
    expect(apiSlots(grown.text)).toBe(16);
  });
});
