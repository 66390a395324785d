// The test cluster's PKI, made with the openssl command line: EC P-256 keys (Kubernetes accepts
// them for serving, client, signing and service-account keys) so the whole set takes tens of
// milliseconds. Three separate trust roots, as in a kubeadm cluster: the cluster CA (serving
// certificates, CSR signing, the root CA pods see), the client CA (who may call the API server)
// and the front-proxy CA (who may assert a user through request headers to aggregated APIs).
import { execFile } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshctlError } from '../../../src/errors';

export interface PkiOptions {
  /** Directory the files are written to; created with mode 0700. */
  readonly dir: string;
  /** Address the API server listens on; becomes an IP SAN of its serving certificate. */
  readonly bindAddress: string;
  /** ClusterIP of default/kubernetes; becomes an IP SAN of the serving certificate. */
  readonly kubernetesServiceIP: string;
  /**
   * The node: its name (the kubelet's identity) and the address its kubelet serves on. Default:
   * a node named "node" on bindAddress.
   */
  readonly node?: { readonly name: string; readonly address: string };
}

export interface CertAndKey {
  readonly cert: string;
  readonly key: string;
}

/** Paths of every generated file. Keys are mode 0600. */
export interface Pki {
  readonly dir: string;
  readonly clusterCa: CertAndKey;
  readonly clientCa: CertAndKey;
  readonly frontProxyCa: CertAndKey;
  readonly apiserverServing: CertAndKey;
  readonly controllerManagerServing: CertAndKey;
  /** CN=admin, O=system:masters: bypasses RBAC. */
  readonly admin: CertAndKey;
  /** CN=system:kube-controller-manager: bound to its bootstrap ClusterRole. */
  readonly controllerManagerClient: CertAndKey;
  /** CN=front-proxy-client: the identity the aggregator presents to extension API servers. */
  readonly frontProxyClient: CertAndKey;
  /** The kubelet's serving certificate (IP SAN: the node address). */
  readonly kubeletServing: CertAndKey;
  /** CN=system:node:<name>, O=system:nodes: the kubelet's identity (Node authorizer). */
  readonly kubeletClient: CertAndKey;
  /** The API server's identity towards kubelets (logs, exec, port-forward). */
  readonly apiserverKubeletClient: CertAndKey;
  /** CN=system:kube-proxy: bound to system:node-proxier. */
  readonly kubeProxyClient: CertAndKey;
  /** CN=system:kube-scheduler: bound to its bootstrap ClusterRole. */
  readonly schedulerClient: CertAndKey;
  readonly schedulerServing: CertAndKey;
  /** Private key that signs service-account tokens, and its public half that verifies them. */
  readonly serviceAccountKey: string;
  readonly serviceAccountPublicKey: string;
}

export class PkiError extends MeshctlError {}

const VALID_DAYS = '3650';
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const OPENSSL_TIMEOUT_MS = 10_000;

/** DNS names every API server certificate carries: how clients in and out of pods name it. */
export const API_SERVER_DNS_NAMES: readonly string[] = [
  'localhost',
  'kubernetes',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
];

interface LeafSpec {
  readonly name: string;
  readonly subject: string;
  readonly issuer: CertAndKey;
  readonly usage: 'serverAuth' | 'clientAuth';
  readonly altNames?: readonly string[];
}

/** Generates a fresh PKI into options.dir, overwriting files of an earlier run. */
export async function generatePki(options: PkiOptions): Promise<Pki> {
  const { dir } = options;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);

  const [clusterCa, clientCa, frontProxyCa, serviceAccountKey] = await Promise.all([
    createCa(dir, 'ca', 'nginx-meshctl-test-cluster-ca'),
    createCa(dir, 'client-ca', 'nginx-meshctl-test-client-ca'),
    createCa(dir, 'front-proxy-ca', 'nginx-meshctl-test-front-proxy-ca'),
    createServiceAccountKey(dir),
  ]);

  const apiserverAltNames = [
    ...new Set([options.bindAddress, '127.0.0.1', options.kubernetesServiceIP]),
  ].map((ip) => `IP:${ip}`);
  const [apiserverServing, controllerManagerServing, admin, controllerManagerClient, frontProxy] =
    await Promise.all([
      createLeaf(dir, {
        name: 'apiserver',
        subject: '/CN=kube-apiserver',
        issuer: clusterCa,
        usage: 'serverAuth',
        altNames: [...apiserverAltNames, ...API_SERVER_DNS_NAMES.map((name) => `DNS:${name}`)],
      }),
      createLeaf(dir, {
        name: 'controller-manager-serving',
        subject: '/CN=kube-controller-manager',
        issuer: clusterCa,
        usage: 'serverAuth',
        altNames: ['IP:127.0.0.1', 'DNS:localhost'],
      }),
      createLeaf(dir, {
        name: 'admin',
        subject: '/O=system:masters/CN=admin',
        issuer: clientCa,
        usage: 'clientAuth',
      }),
      createLeaf(dir, {
        name: 'controller-manager',
        subject: '/CN=system:kube-controller-manager',
        issuer: clientCa,
        usage: 'clientAuth',
      }),
      createLeaf(dir, {
        name: 'front-proxy-client',
        subject: '/CN=front-proxy-client',
        issuer: frontProxyCa,
        usage: 'clientAuth',
      }),
    ]);

  const { name: nodeName, address: nodeAddress } = options.node ?? {
    name: 'node',
    address: options.bindAddress,
  };
  const [kubeletServing, kubeletClient, apiserverKubeletClient, kubeProxyClient] =
    await Promise.all([
      createLeaf(dir, {
        name: 'kubelet-serving',
        subject: `/CN=${nodeName}`,
        issuer: clusterCa,
        usage: 'serverAuth',
        altNames: [`IP:${nodeAddress}`, `DNS:${nodeName}`],
      }),
      createLeaf(dir, {
        name: 'kubelet',
        subject: `/O=system:nodes/CN=system:node:${nodeName}`,
        issuer: clientCa,
        usage: 'clientAuth',
      }),
      createLeaf(dir, {
        name: 'apiserver-kubelet-client',
        subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
        issuer: clientCa,
        usage: 'clientAuth',
      }),
      createLeaf(dir, {
        name: 'kube-proxy',
        subject: '/CN=system:kube-proxy',
        issuer: clientCa,
        usage: 'clientAuth',
      }),
    ]);
  const [schedulerClient, schedulerServing] = await Promise.all([
    createLeaf(dir, {
      name: 'scheduler',
      subject: '/CN=system:kube-scheduler',
      issuer: clientCa,
      usage: 'clientAuth',
    }),
    createLeaf(dir, {
      name: 'scheduler-serving',
      subject: '/CN=kube-scheduler',
      issuer: clusterCa,
      usage: 'serverAuth',
      altNames: ['IP:127.0.0.1', 'DNS:localhost'],
    }),
  ]);

  return {
    dir,
    kubeletServing,
    kubeletClient,
    apiserverKubeletClient,
    kubeProxyClient,
    schedulerClient,
    schedulerServing,
    clusterCa,
    clientCa,
    frontProxyCa,
    apiserverServing,
    controllerManagerServing,
    admin,
    controllerManagerClient,
    frontProxyClient: frontProxy,
    serviceAccountKey: serviceAccountKey.key,
    serviceAccountPublicKey: serviceAccountKey.cert,
  };
}

async function createCa(dir: string, name: string, commonName: string): Promise<CertAndKey> {
  const files = filesOf(dir, name);
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-subj',
    `/CN=${commonName}`,
    '-days',
    VALID_DAYS,
    // An empty configuration: no distribution defaults leak into the certificates.
    '-config',
    '/dev/null',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
  await chmod(files.key, 0o600);
  return files;
}

async function createLeaf(dir: string, leaf: LeafSpec): Promise<CertAndKey> {
  const files = filesOf(dir, leaf.name);
  const altNames =
    leaf.altNames === undefined ? [] : ['-addext', `subjectAltName=${leaf.altNames.join(',')}`];
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-subj',
    leaf.subject,
    '-days',
    VALID_DAYS,
    '-config',
    '/dev/null',
    '-CA',
    leaf.issuer.cert,
    '-CAkey',
    leaf.issuer.key,
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'keyUsage=critical,digitalSignature',
    '-addext',
    `extendedKeyUsage=${leaf.usage}`,
    ...altNames,
  ]);
  await chmod(files.key, 0o600);
  return files;
}

/** The service-account key pair; `cert` holds the public key (it is no certificate). */
async function createServiceAccountKey(dir: string): Promise<CertAndKey> {
  const key = join(dir, 'sa.key');
  const publicKey = join(dir, 'sa.pub');
  await openssl([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    key,
  ]);
  await chmod(key, 0o600);
  await openssl(['pkey', '-in', key, '-pubout', '-out', publicKey]);
  return { key, cert: publicKey };
}

function filesOf(dir: string, name: string): CertAndKey {
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'openssl',
      args,
      { timeout: OPENSSL_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      (error, _stdout, stderr) => {
        if (error === null) {
          resolve();
          return;
        }
        reject(
          new PkiError(`openssl ${args[0] ?? ''} failed: ${stderr.trim() || error.message}`, {
            cause: error,
            hint: 'the test cluster needs the openssl command (Debian package "openssl")',
          }),
        );
      },
    );
  });
}
