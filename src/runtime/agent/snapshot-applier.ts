// From a mesh snapshot to the configuration nginx runs: render this pod's configuration, hand it
// to the config applier (write, nginx -t, reload, or keep the last good one), and tell the
// metrics which snapshot is in force. A snapshot whose change since the last one is only in
// collections the renderer does not read (a pod starting elsewhere changes only peers) skips the
// render when the last configuration was applied: at a large mesh a render costs tens of ms of
// CPU in every sidecar, and such changes come with every pod anywhere.
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import type { SidecarContext } from '../../render/sidecar';
import { renderSidecarConfig } from '../../render/sidecar';
import type { Logger } from '../role/log';
import type { ConfigApplier } from './config-applier';

export interface SnapshotApplierSettings {
  readonly context: SidecarContext;
  readonly logger: Logger;
  readonly apply: ConfigApplier['apply'];
  /** Called with every snapshot whose configuration runs. */
  readonly onApplied: (snapshot: MeshSnapshot) => void;
}

export interface SnapshotApplier {
  /**
   * Resolves to an error message, or undefined once the snapshot's configuration runs.
   * unrendered: only collections no renderer reads changed since the last snapshot.
   */
  apply(
    snapshot: MeshSnapshot,
    generation: number,
    unrendered: boolean,
  ): Promise<string | undefined>;
  /** How many snapshots were rendered (the others were in force without a render). */
  renders(): number;
}

export function createSnapshotApplier(settings: SnapshotApplierSettings): SnapshotApplier {
  const { context, logger } = settings;
  const warned = new Set<string>();
  /** Whether the last rendered configuration runs: then the renderer's inputs are in force. */
  let inForce = false;
  let renders = 0;
  return {
    async apply(snapshot, generation, unrendered) {
      if (unrendered && inForce) {
        settings.onApplied(snapshot);
        return undefined;
      }
      renders += 1;
      const rendered = renderSidecarConfig(snapshot, context);
      for (const warning of rendered.warnings) {
        if (warned.has(warning)) continue;
        warned.add(warning);
        logger.warn(warning, { generation });
      }
      const outcome = await settings.apply(rendered.text, `generation ${generation}`);
      inForce = outcome.applied;
      if (!outcome.applied) return outcome.error ?? 'not applied';
      settings.onApplied(snapshot);
      return undefined;
    },
    renders: () => renders,
  };
}
