// The sidecar's nginx configuration from the controller's snapshot: renderSidecarConfig decides
// (buildSidecarModel) and prints (stream and http directives, printNginxConfig). While the mesh
// is being removed (mesh.transparent) it is the transparent configuration. Pure: identical
// input gives identical bytes.
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
import { buildHttpDirectives } from './http-directives';
import { buildSidecarModel } from './model';
import type { SidecarPolicy } from './policies';
import { block, d, buildStreamDirectives } from './stream-directives';

export type { SidecarContext } from './context';
export { buildSidecarModel } from './model';
export type { SidecarModel } from './model';
export { policyLabel, withoutPolicies } from './policies';
export type { SidecarPolicy } from './policies';

/** How long a reload lets old workers finish their connections. */
const WORKER_SHUTDOWN_TIMEOUT = '10s';

/**
 * The configuration nginx runs in the sidecar, what could not be applied, and the policy objects
 * the text is made of (none while transparent).
 */
export function renderSidecarConfig(
  snapshot: MeshSnapshot,
  context: SidecarContext,
): {
  readonly text: string;
  readonly warnings: readonly string[];
  readonly policies: readonly SidecarPolicy[];
} {
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
    return { text: printNginxConfig(directives), warnings: [], policies: [] };
  }
  const { model, warnings, policies } = buildSidecarModel(snapshot, context);
  const directives: Directive[] = [
    ...context.modules.map((module) => d('load_module', module)),
    d('worker_processes', '1'),
    d('worker_shutdown_timeout', WORKER_SHUTDOWN_TIMEOUT),
    d('pid', `${context.runDir}/nginx.pid`),
    d('error_log', 'stderr', model.errorLogLevel),
    block('events', [], [d('worker_connections', '4096')]),
    block('stream', [], buildStreamDirectives(model, context)),
    block('http', [], buildHttpDirectives(model, context)),
  ];
  return { text: printNginxConfig(directives), warnings, policies };
}
