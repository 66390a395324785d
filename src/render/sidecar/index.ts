// The sidecar's nginx configuration from the controller's snapshot: renderSidecarConfig decides
// (buildSidecarModel) and prints (stream and http directives, printNginxConfig). While the mesh
// is being removed (mesh.transparent) it is the transparent configuration. A pod that serves
// more than its app's calls (a gateway, src/render/gateway) extends the outbound half with its
// own servers. Pure: identical input gives identical bytes.
import {
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
} from '../../manifests/constants';
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import { buildTransparentModel, printNginxConfig } from '../agent-nginx';
import type { Directive } from '../agent-nginx';
import type { SidecarContext } from './context';
import type { UpstreamSlots } from './context';
import { buildHttpDirectives, hasFreshTwin } from './http-directives';
import type { OutboundExtension } from './http-directives';
import { buildSidecarModel } from './model';
import type { SidecarModel } from './model';
import { freshUpstreamName } from './names';
import type { SidecarPolicy } from './policies';
import {
  block,
  d,
  buildStreamDirectives,
  outboundHttpHop,
  outboundTcpHop,
} from './stream-directives';
import { membersText, slotsOf } from './upstream-slots';

export type { SidecarContext, UpstreamSlots } from './context';
export { buildSidecarModel } from './model';
export type { SidecarModel } from './model';
export { policyLabel, withoutPolicies } from './policies';
export type { SidecarPolicy } from './policies';

/** How long a reload lets old workers finish their connections. */
const WORKER_SHUTDOWN_TIMEOUT = '10s';

/** What the sidecar runs: the configuration and its members file. */
export interface RenderedSidecar {
  readonly text: string;
  /** The members file (upstream-slots.ts); empty while transparent. */
  readonly members: string;
  /** The slots of each slotted upstream, for the next render's context.upstreamSlots. */
  readonly slots: ReadonlyMap<string, UpstreamSlots>;
  readonly warnings: readonly string[];
  /** The policy objects the text is made of (none while transparent). */
  readonly policies: readonly SidecarPolicy[];
}

/** What an extension of the sidecar's configuration adds, decided from the sidecar's model. */
export interface SidecarExtension {
  readonly outbound: OutboundExtension;
  readonly warnings: readonly string[];
  /** The policy objects the extension's part is made of. */
  readonly policies: readonly SidecarPolicy[];
}

/**
 * The configuration nginx runs in the sidecar, its members, and what could not be applied;
 * `extend` adds to it (not while transparent).
 */
export function renderSidecarConfig(
  snapshot: MeshSnapshot,
  context: SidecarContext,
  extend?: (model: SidecarModel) => SidecarExtension,
): RenderedSidecar {
  if (snapshot.mesh.transparent) {
    const directives = buildTransparentModel({
      runDir: context.runDir,
      modules: context.modules,
      errorLogLevel: snapshot.mesh.errorLogLevel,
      ipv6: context.ipv6,
      outboundPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
      inboundPort: SIDECAR_INBOUND_REDIRECT_PORT,
      healthHttpPort: SIDECAR_HEALTH_HTTP_PORT,
      healthHttpsPort: SIDECAR_HEALTH_HTTPS_PORT,
      healthRedirects: context.healthRedirects,
    });
    return {
      text: printNginxConfig(directives),
      members: '',
      slots: new Map(),
      warnings: [],
      policies: [],
    };
  }
  const { model, warnings, policies } = buildSidecarModel(snapshot, context);
  const extension = extend?.(model);
  const directives: Directive[] = [
    ...context.modules.map((module) => d('load_module', module)),
    d('worker_processes', '1'),
    d('worker_shutdown_timeout', WORKER_SHUTDOWN_TIMEOUT),
    d('pid', `${context.runDir}/nginx.pid`),
    d('error_log', 'stderr', model.errorLogLevel),
    block('events', [], [d('worker_connections', '4096')]),
    block('stream', [], buildStreamDirectives(model, context)),
    block('http', [], buildHttpDirectives(model, context, extension?.outbound)),
  ];
  const members = membersText(
    model,
    (upstream) => (hasFreshTwin(upstream) ? freshUpstreamName(upstream.name) : undefined),
    { http: outboundHttpHop, tcp: outboundTcpHop },
  );
  return {
    text: printNginxConfig(directives),
    members,
    slots: slotsOf(model),
    warnings: [...warnings, ...(extension?.warnings ?? [])],
    policies:
      extension === undefined
        ? policies
        : [...policies, ...extension.policies].sort((a, b) =>
            compareText(`${a.collection} ${a.key}`, `${b.collection} ${b.key}`),
          ),
  };
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
