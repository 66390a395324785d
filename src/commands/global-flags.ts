// The persistent flags every command shares, with NGINX Service Mesh's names and defaults.
import {
  DEFAULT_MESH_NAMESPACE,
  DEFAULT_MESH_TIMEOUT_MS,
  KUBECONFIG_ENV,
} from '../manifests/constants';
import type { ActionContext, FlagSpec } from './spec';

export interface GlobalOptions {
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly timeoutMs: number;
  readonly debug: boolean;
}

export type GlobalOptionsReader = (context: ActionContext) => GlobalOptions;

/** $KUBECONFIG when set, else ~/.kube/config (as NSM and kubectl). */
export function defaultKubeconfig(
  env: Readonly<Record<string, string | undefined>>,
  home: string,
): string {
  const fromEnv = env[KUBECONFIG_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return `${home.replace(/\/+$/, '')}/.kube/config`;
}

export function globalFlags(defaultKubeconfigPath: string): FlagSpec[] {
  return [
    {
      long: 'kubeconfig',
      short: 'k',
      type: 'string',
      usage: 'path to kubectl config file',
      defaultValue: defaultKubeconfigPath,
    },
    {
      long: 'namespace',
      short: 'n',
      type: 'string',
      usage: 'NGINX Service Mesh control plane namespace',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
    {
      long: 'timeout',
      short: 't',
      type: 'duration',
      usage: 'timeout when communicating with NGINX Service Mesh',
      defaultValue: DEFAULT_MESH_TIMEOUT_MS,
    },
    { long: 'debug', type: 'bool', usage: 'debug flag', hidden: true },
  ];
}

export const readGlobalOptions: GlobalOptionsReader = (context) => ({
  kubeconfig: context.string('kubeconfig'),
  namespace: context.string('namespace'),
  timeoutMs: context.duration('timeout'),
  debug: context.bool('debug'),
});
