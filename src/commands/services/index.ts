// `services`: the Services in the mesh, i.e. in namespaces that opted into injection, with the
// addresses behind them.
import { MeshctlError, describeError } from '../../errors';
import { AUTO_INJECT_LABEL } from '../../manifests/constants';
import type { MeshService } from '../../render/services';
import { renderServices, sortServices } from '../../render/services';
import type { Io } from '../../runtime/io';
import type { KubeAccess, KubeTarget } from '../../runtime/kube/access';
import { getJson } from '../../runtime/kube/get-json';
import type { GlobalOptionsReader } from '../global-flags';
import { outputFlag, printDocument } from '../output';
import type { CommandSpec } from '../spec';

export interface ServicesDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
}

interface List<T> {
  readonly items: readonly T[];
}
interface NamedObject {
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
}
interface ServiceObject extends NamedObject {
  readonly spec?: { readonly ports?: readonly { readonly port: number }[] };
}
interface SliceObject extends NamedObject {
  readonly endpoints?: readonly { readonly addresses: readonly string[] }[];
}

async function servicesOf(
  deps: ServicesDeps,
  target: KubeTarget,
  namespace: string,
): Promise<MeshService[]> {
  const ns = encodeURIComponent(namespace);
  const [services, slices] = await Promise.all([
    getJson<List<ServiceObject>>(deps.kube, target, `/api/v1/namespaces/${ns}/services`),
    getJson<List<SliceObject>>(
      deps.kube,
      target,
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
    ),
  ]);
  return services.items.map((service) => ({
    namespace,
    name: service.metadata.name,
    ports: (service.spec?.ports ?? []).map((port) => port.port),
    addresses: slices.items
      .filter(
        (slice) => slice.metadata.labels?.['kubernetes.io/service-name'] === service.metadata.name,
      )
      .flatMap((slice) => (slice.endpoints ?? []).flatMap((endpoint) => endpoint.addresses)),
  }));
}

export function servicesCommand(globals: GlobalOptionsReader, deps: ServicesDeps): CommandSpec {
  return {
    name: 'services',
    short: 'List the Services registered with NGINX Service Mesh',
    long: `List the Services registered with NGINX Service Mesh: the Services of namespaces labelled
${AUTO_INJECT_LABEL}=enabled, with the addresses of their endpoints and their ports.`,
    flags: [outputFlag(['table', 'json', 'yaml'])],
    action: async (context) => {
      const { kubeconfig, timeoutMs } = globals(context);
      const target = { kubeconfig, timeoutMs };
      let services: MeshService[];
      try {
        const selector = encodeURIComponent(`${AUTO_INJECT_LABEL}=enabled`);
        const namespaces = await getJson<List<NamedObject>>(
          deps.kube,
          target,
          `/api/v1/namespaces?labelSelector=${selector}`,
        );
        const names = namespaces.items
          .map((item) => item.metadata.name)
          .filter((name) => name !== 'kube-system');
        services = (await Promise.all(names.map((name) => servicesOf(deps, target, name)))).flat();
      } catch (error) {
        throw new MeshctlError(`unable to list the mesh's Services: ${describeError(error)}`, {
          cause: error,
        });
      }
      const output = context.string('output');
      if (output === 'table') deps.io.out.write(renderServices(services));
      else await printDocument(deps.io, output, sortServices(services));
    },
  };
}
