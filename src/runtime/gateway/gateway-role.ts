// `run --role gateway`: an ingress gateway for one Gateway of the mesh's GatewayClass. It is the
// agent (its own SVID, NATS, render, nginx -t, reload, metrics on the metrics port) rendering the
// Gateway's listeners and attached routes instead of a sidecar's redirect servers, and serving
// listener certificates from its certificate directory. Only the flags live here.
import { UsageError } from '../../errors';
import { agentRole } from '../agent/agent-role';
import type { RoleDefinition } from '../role/role';

export const gatewayRole: RoleDefinition = {
  name: 'gateway',
  description: 'runs an ingress gateway for a Gateway of the mesh',
  probes: false,
  flags: [
    ...(agentRole.flags ?? []),
    { long: 'gateway', type: 'string', usage: 'namespace/name of the Gateway served' },
    {
      long: 'certificate-dir',
      type: 'string',
      usage: 'directory of the listeners\' certificates ("<listener>.crt", "<listener>.key")',
      defaultValue: '/var/run/secrets/nginx-mesh-gateway',
    },
  ],
  loadFrame: async () => (await import('../role/agent-frame')).runRole,
  start: async (context) => {
    const gateway = context.options.string('gateway');
    if (!/^[^/]+\/[^/]+$/.test(gateway)) {
      throw new UsageError(
        'the gateway role needs --gateway <namespace>/<name>',
        'nginx-meshctl run',
      );
    }
    const certificateDir = context.options.string('certificate-dir');
    return (await import('../agent/start-agent')).startAgent(context, { gateway, certificateDir });
  },
};
