// From a mesh snapshot to the configuration nginx runs: render this pod's configuration, hand it
// to the config applier (write, nginx -t, reload, or keep the last good one), and tell the
// metrics which snapshot is in force. A snapshot whose change since the last one is only in
// collections the renderer does not read (a pod starting elsewhere changes only peers) skips the
// render when the last configuration was applied: at a large mesh a render costs tens of ms of
// CPU in every sidecar, and such changes come with every pod anywhere.
//
// When `nginx -t` refuses a rendered configuration, one policy object is usually at fault (a
// value the controller's checks let through). Rather than keep an old configuration for every
// later generation, the applier finds the objects nginx refuses (policy-isolation.ts, at most
// AGENT_POLICY_BISECT_MAX_CHECKS runs of `nginx -t`), applies the generation without them, and
// answers with an error naming them and nginx's words, so the generation is acked as failed
// while the rest of it runs. The next rendered generation starts again from every object, so one
// that fixes or removes the object is applied whole.
import { performance } from 'node:perf_hooks';
import {
  AGENT_ACK_ERROR_MAX_LENGTH,
  AGENT_POLICY_BISECT_MAX_CHECKS,
} from '../../manifests/constants';
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import type {
  RenderedSidecar,
  SidecarContext,
  SidecarPolicy,
  UpstreamSlots,
} from '../../render/sidecar';
import { policyLabel, renderSidecarConfig, withoutPolicies } from '../../render/sidecar';
import type { Logger } from '../role/log';
import type { ConfigApplier } from './config-applier';
import { isolateRefused } from './policy-isolation';
import type { Isolation } from './policy-isolation';

/** How a snapshot becomes this pod's configuration: the sidecar's, or a gateway's. */
export type SnapshotRenderer = (snapshot: MeshSnapshot, context: SidecarContext) => RenderedSidecar;

export interface SnapshotApplierSettings {
  readonly context: SidecarContext;
  /** Default: renderSidecarConfig. */
  readonly render?: SnapshotRenderer;
  readonly logger: Logger;
  readonly apply: ConfigApplier['apply'];
  /** `nginx -t` without applying, for finding the objects nginx refuses. */
  readonly check: ConfigApplier['check'];
  /** Called with every snapshot whose configuration runs. */
  readonly onApplied: (snapshot: MeshSnapshot) => void;
  /** Most `nginx -t` runs spent finding refused objects (AGENT_POLICY_BISECT_MAX_CHECKS). */
  readonly maxChecks?: number;
}

export interface SnapshotApplier {
  /**
   * Resolves to an error message, or undefined once the snapshot's configuration runs whole.
   * unrendered: only collections no renderer reads changed since the last snapshot.
   */
  apply(
    snapshot: MeshSnapshot,
    generation: number,
    unrendered: boolean,
  ): Promise<string | undefined>;
  /** How many snapshots were rendered (the others were in force without a render). */
  renders(): number;
  /**
   * Renders the last snapshot again, for an input outside it that changed (a gateway's
   * certificate files); resolves as apply does, or undefined before any snapshot.
   */
  reapply(): Promise<string | undefined>;
}

/** One line of at most AGENT_ACK_ERROR_MAX_LENGTH characters. */
export function boundedLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= AGENT_ACK_ERROR_MAX_LENGTH
    ? line
    : `${line.slice(0, AGENT_ACK_ERROR_MAX_LENGTH - 1)}…`;
}

/** The ack error of a configuration applied without the isolated objects. */
function leftOutMessage(isolation: Isolation<SidecarPolicy>): string {
  const refused = isolation.leftOut.filter((entry) => entry.error !== undefined);
  const untried = isolation.leftOut.length - refused.length;
  const names = refused.map((entry) => policyLabel(entry.item)).join(', ');
  const parts = [
    refused.length > 0 ? `left out ${names}, which nginx refused` : '',
    untried > 0
      ? `left out ${untried} more policy object(s) not checked within ${isolation.checks} nginx -t runs`
      : '',
  ].filter((part) => part !== '');
  const first = refused[0]?.error;
  return boundedLine(`${parts.join('; ')}${first === undefined ? '' : ` (${first})`}`);
}

export function createSnapshotApplier(settings: SnapshotApplierSettings): SnapshotApplier {
  const { logger } = settings;
  const renderConfig = settings.render ?? renderSidecarConfig;
  let last: { snapshot: MeshSnapshot; generation: number } | undefined;
  /** The upstream slots of the configuration in force: kept while the endpoints fit them. */
  let slots: ReadonlyMap<string, UpstreamSlots> | undefined;
  const context = (): SidecarContext =>
    slots === undefined ? settings.context : { ...settings.context, upstreamSlots: slots };
  const warned = new Set<string>();
  /** Whether the last rendered configuration runs: then the renderer's inputs are in force. */
  let inForce = false;
  /** What the configuration in force left out, repeated while no render replaces it. */
  let leftOut: string | undefined;
  let renders = 0;

  /** Applies the snapshot without the objects nginx refuses; undefined when none can help. */
  async function applyWithout(
    snapshot: MeshSnapshot,
    policies: readonly SidecarPolicy[],
    firstError: string,
    generation: number,
  ): Promise<string | undefined> {
    const render = (kept: readonly SidecarPolicy[]): RenderedSidecar => {
      const keptKeys = new Set(kept);
      const dropped = policies.filter((policy) => !keptKeys.has(policy));
      return renderConfig(withoutPolicies(snapshot, dropped), context());
    };
    const started = performance.now();
    const isolation = await isolateRefused(
      policies,
      firstError,
      async (kept) => (await settings.check(render(kept).text)).error,
      settings.maxChecks ?? AGENT_POLICY_BISECT_MAX_CHECKS,
    );
    if (isolation === undefined) return undefined;
    const rendered = render(isolation.kept);
    const outcome = await settings.apply(
      rendered.text,
      `generation ${generation}`,
      rendered.members,
    );
    if (!outcome.applied) return undefined;
    slots = rendered.slots;
    const message = leftOutMessage(isolation);
    logger.warn('configuration applied without the policy objects nginx refused', {
      generation,
      leftOut: isolation.leftOut.map((entry) => policyLabel(entry.item)),
      checks: isolation.checks,
      durationMs: Math.round(performance.now() - started),
      error: message,
    });
    return message;
  }

  const applier: SnapshotApplier = {
    async apply(snapshot, generation, unrendered) {
      last = { snapshot, generation };
      if (unrendered && inForce) {
        settings.onApplied(snapshot);
        return leftOut;
      }
      renders += 1;
      const rendered = renderConfig(snapshot, context());
      for (const warning of rendered.warnings) {
        if (warned.has(warning)) continue;
        warned.add(warning);
        logger.warn(warning, { generation });
      }
      const outcome = await settings.apply(
        rendered.text,
        `generation ${generation}`,
        rendered.members,
      );
      leftOut = undefined;
      inForce = outcome.applied;
      if (outcome.applied) {
        slots = rendered.slots;
        settings.onApplied(snapshot);
        return undefined;
      }
      const error = boundedLine(outcome.error ?? 'not applied');
      if (outcome.rejected !== true || rendered.policies.length === 0) return error;
      leftOut = await applyWithout(snapshot, rendered.policies, error, generation);
      if (leftOut === undefined) return error;
      inForce = true;
      settings.onApplied(snapshot);
      return leftOut;
    },
    renders: () => renders,
    async reapply() {
      if (last === undefined) return undefined;
      return applier.apply(last.snapshot, last.generation, false);
    },
  };
  return applier;
}
