import type { Io } from '../../runtime/io';
import type { GlobalOptionsReader } from '../global-flags';
import type { CommandSpec } from '../spec';
import type { KubeAccess } from '../../runtime/kube/access';
import { describeError } from '../../errors';
import { MESH_CONFIG_MAP_KEY, MESH_CONFIG_MAP_NAME } from '../../manifests/constants';
import type { GlobalOptions } from '../global-flags';
import type { InputReader, MeshConfigLookup, SidecarLayout } from './run-inject';

export interface InjectCommandDeps {
  readonly io: Io;
  readonly input: InputReader;
  readonly clientVersion: string;
  readonly kube: KubeAccess;
}

/** Reads ConfigMap meshconfig from the mesh namespace, bounded by --timeout. */
function meshConfigLookup(kube: KubeAccess, globals: GlobalOptions): MeshConfigLookup {
  return async () => {
    const path = `/api/v1/namespaces/${encodeURIComponent(globals.namespace)}/configmaps/${MESH_CONFIG_MAP_NAME}`;
    try {
      const response = await kube.getRaw(
        { kubeconfig: globals.kubeconfig, timeoutMs: globals.timeoutMs },
        path,
      );
      if (response.status === 404) {
        return {
          found: false,
          reason: `no ConfigMap ${MESH_CONFIG_MAP_NAME} in namespace "${globals.namespace}"`,
        };
      }
      if (response.status !== 200)
        return { found: false, reason: `reading it answered ${response.status}` };
      const data = (JSON.parse(response.body) as { data?: Record<string, string> }).data ?? {};
      const json = data[MESH_CONFIG_MAP_KEY];
      if (json === undefined)
        return {
          found: false,
          reason: `ConfigMap ${MESH_CONFIG_MAP_NAME} has no ${MESH_CONFIG_MAP_KEY}`,
        };
      return { found: true, json, from: `${globals.namespace}/${MESH_CONFIG_MAP_NAME}` };
    } catch (error) {
      return { found: false, reason: describeError(error) };
    }
  };
}

export function injectCommand(globals: GlobalOptionsReader, deps: InjectCommandDeps): CommandSpec {
  return {
    name: 'inject',
    short: 'Inject the NGINX Service Mesh sidecars into Kubernetes resources',
    long: `Inject the NGINX Service Mesh sidecars into Kubernetes resources.
Accepts YAML (one or more documents) or JSON (an object or a List) from a file, an http(s) URL or
stdin and writes the injected resources to stdout in the same format. Pods, Deployments,
StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs are injected;
other documents pass through unchanged, in order. A report of what was injected or skipped, and
why, goes to stderr.
Images and mesh-wide settings come from the deployed mesh's configuration when it can be read;
otherwise inject works offline with NGINX Service Mesh's registry and this client's version, and
says so on stderr.
The sidecar is injected as a native sidecar (an init container that keeps running, Kubernetes
1.29+), so apps and init containers start after the proxy is ready and Jobs complete; use
--sidecar-layout classic for the layout of NGINX Service Mesh 2.0.
Protocols follow each Service port's appProtocol, else its name: grpc, http2, h2c (HTTP/2 in
cleartext from the app) and http, ws (HTTP/1.x with WebSocket upgrades) are proxied as HTTP, with
mTLS between sidecars; anything else as TCP. UDP bypasses the sidecar.
Under strict mTLS, traffic to a destination outside the mesh (no Service's address or endpoint)
is refused: HTTP gets 403 naming the reason, other connections are closed. The pod annotation
config.nsm.nginx.com/default-egress-allowed: "true" lets it leave the pod directly instead; in
permissive and off modes it always does.`,
    example: `  # Inject a file and apply it
  nginx-meshctl inject -f ./my-app.yaml | kubectl apply -f -

  # Inject a manifest served over HTTPS
  nginx-meshctl inject -f https://example.com/my-app.yaml | kubectl apply -f -

  # Inject JSON from stdin
  nginx-meshctl inject < ./my-app.json > ./my-injected-app.json

  # Keep database traffic out of the proxy
  nginx-meshctl inject -f ./my-app.yaml --ignore-outgoing-ports 1433,1434`,
    flags: [
      {
        long: 'file',
        short: 'f',
        type: 'string',
        usage:
          'file or http(s) URL to inject (a URL is fetched with GET, within 1 minute); "-" or none reads stdin',
      },
      {
        long: 'ignore-incoming-ports',
        type: 'ints',
        usage: 'ports the proxy does not intercept for incoming traffic',
        defaultValue: [],
      },
      {
        long: 'ignore-outgoing-ports',
        type: 'ints',
        usage: 'ports the proxy does not intercept for outgoing traffic',
        defaultValue: [],
      },
      {
        long: 'sidecar-layout',
        type: 'string',
        usage:
          'native: the proxy is a native sidecar (Kubernetes 1.29+); classic: a regular container',
        defaultValue: 'native',
        choices: ['classic', 'native'],
      },
    ],
    action: async (context) => {
      const global = globals(context);
      const { namespace } = global;
      const file = context.string('file');
      // The YAML parser and the injection code load only when inject runs.
      const [{ runInject }, { injectPodTemplate }] = await Promise.all([
        import('./run-inject'),
        import('../../manifests/inject/inject-pod'),
      ]);
      await runInject(
        {
          file: file === '' ? undefined : file,
          meshNamespace: namespace,
          ignoreIncomingPorts: context.ints('ignore-incoming-ports'),
          ignoreOutgoingPorts: context.ints('ignore-outgoing-ports'),
          layout: context.string('sidecar-layout') as SidecarLayout,
          imageTag: deps.clientVersion,
        },
        {
          io: deps.io,
          input: deps.input,
          injectPod: injectPodTemplate,
          meshConfig: meshConfigLookup(deps.kube, global),
        },
      );
    },
  };
}
