// The executable deploys, reports on, upgrades and removes the mesh on the test cluster: real
// server-side apply, real readiness, real RBAC refusals. Removal is checked against every
// listable resource type, and an interrupted deploy and an interrupted remove are finished by
// running remove again.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import type { KubeRest } from './harness/kube-rest';
import { natsServerCertificate } from '../support/nats-tls';
import { listPods, testKubeconfig, testKubectl, testRest, waitFor } from './support/kube';
import { leftovers, waitForCleanCluster } from './support/leftovers';
import { inNetns, netnsOf, tagNodeImage } from './support/node-access';
import { NATS_IMAGE } from '../../src/manifests/constants';
import { IMAGE_REGISTRY, IMAGE_TAG, NATS_IMAGE_REF } from '../support/images';

const binary = join(__dirname, '..', '..', 'dist', 'nginx-meshctl');
const namespace = 'mesh-lifecycle';
/** The images under a registry and tag of this file's own (see tagImagesForThisFile). */
const imageFlags = [
  '--registry-server',
  'registry.test/nsm',
  '--image-tag',
  'lifecycle',
  '--disable-public-images',
];

/**
 * The built images under the registry and tags this file deploys, as a push to registry.test
 * would publish them: the tags name two releases of the same bits.
 */
async function tagImagesForThisFile(): Promise<void> {
  for (const tag of ['lifecycle', 'lifecycle-2']) {
    for (const name of ['nginx-mesh-controller', 'nginx-mesh-init', 'nginx-mesh-sidecar']) {
      await tagNodeImage(
        `${IMAGE_REGISTRY}/${name}:${IMAGE_TAG}`,
        `registry.test/nsm/${name}:${tag}`,
      );
    }
  }
  await tagNodeImage(NATS_IMAGE_REF, `registry.test/nsm/${NATS_IMAGE}`);
}
let rest: KubeRest;
let scratch: string;

function meshctl(args: readonly string[], kubeconfig = testKubeconfig()) {
  return execa(binary, [...args, '-n', namespace], {
    env: { KUBECONFIG: kubeconfig },
    reject: false,
    timeout: 240_000,
  });
}

function kubectl(args: readonly string[], input?: string) {
  return execa(testKubectl(), ['--kubeconfig', testKubeconfig(), ...args], {
    reject: false,
    ...(input === undefined ? {} : { input }),
  });
}

/** Sends `signal` to a running command once its output shows `marker`, and waits for its end. */
async function signalAt(
  run: ResultPromise,
  marker: string,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`"${marker}" never appeared in: ${seen}`)),
      120_000,
    );
    let sent = false;
    const watch = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (!sent && seen.includes(marker)) {
        sent = true;
        clearTimeout(timer);
        run.kill(signal);
        resolve();
      }
    };
    run.stdout?.on('data', watch);
    run.stderr?.on('data', watch);
  });
  await run;
}

beforeAll(async () => {
  rest = await testRest();
  scratch = mkdtempSync(join(tmpdir(), 'mesh-lifecycle-'));
  await tagImagesForThisFile();
  await waitForCleanCluster();
});

afterAll(async () => {
  // Bounded below the hook's own timeout, so a stuck removal says why.
  const removed = await meshctl(['remove', '-y', '-t', '120s']);
  if (removed.exitCode !== 0 && !removed.stderr.includes('not found')) {
    process.stderr.write(`remove after the tests failed:\n${removed.stderr}\n`);
  }
  rmSync(scratch, { recursive: true, force: true });
  rest.close();
});

describe('deploy, status, upgrade and remove', () => {
  it('deploys the control plane and waits until it is ready', async () => {
    const started = Date.now();
    // One-minute SVIDs: NATS's certificate is renewed (and reloaded) while the tests run.
    const result = await meshctl([
      'deploy',
      ...imageFlags,
      '--mtls-mode',
      'strict',
      '--mtls-svid-ttl',
      '1m',
    ]);
    process.stderr.write(`deploy took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect(result.stderr).toContain('Starting the controller... done');
    expect(result.stdout).toBe(
      [
        'Deploying NGINX Service Mesh...',
        'All resources created. Testing the connection to the Service Mesh control plane...',
        'Connected to the NGINX Service Mesh API successfully.',
        'NGINX Service Mesh is running.',
      ].join('\n'),
    );
    expect(result.exitCode).toBe(0);
  });

  it('serves NATS over TLS with its SPIFFE SVID from the registrar', async () => {
    const [pod] = await listPods(rest, namespace, 'app.kubernetes.io/name=nats-server');
    const ip = pod?.status?.podIP;
    expect(ip).toBeDefined();
    const bundle = await rest.request<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${namespace}/configmaps/nginx-mesh-bundle`,
    );
    const certificate = await natsServerCertificate({
      host: ip ?? '',
      port: 4222,
      ca: bundle.data['bundle.crt'] ?? '',
    });
    expect(certificate.subjectaltname).toContain(
      `URI:spiffe://example.org/ns/${namespace}/sa/nats`,
    );
    const timing = await rest.request<{
      metadata: { creationTimestamp: string };
      status: {
        conditions: { type: string; lastTransitionTime: string }[];
        containerStatuses: { name: string; restartCount: number }[];
      };
    }>('GET', `/api/v1/namespaces/${namespace}/pods/${pod?.metadata.name ?? ''}`);
    // The cert-reloader's startup probe holds nats-server back until its SVID is on disk.
    const nats = timing.status.containerStatuses.find((each) => each.name === 'nats-server');
    expect(nats?.restartCount).toBe(0);
    const readyAt = timing.status.conditions.find((each) => each.type === 'Ready');
    const seconds =
      (Date.parse(readyAt?.lastTransitionTime ?? '') -
        Date.parse(timing.metadata.creationTimestamp)) /
      1000;
    process.stderr.write(`NATS pod ready ${seconds.toFixed(0)}s after its creation\n`);
  });

  it("reloads NATS's renewed SVID in place: same process, new certificate", async () => {
    const [pod] = await listPods(rest, namespace, 'app.kubernetes.io/name=nats-server');
    const ip = pod?.status?.podIP ?? '';
    // Monitoring listens on the pod's loopback only: read from inside its network namespace.
    const netns = await netnsOf(ip);
    const varz = async (): Promise<{ start: string; config_load_time: string }> => {
      const [file, args] = inNetns(netns, ['curl', '-sf', '-m', '2', 'http://127.0.0.1:8222/varz']);
      return JSON.parse((await execa(file, args)).stdout) as {
        start: string;
        config_load_time: string;
      };
    };
    await expect(
      fetch(`http://${ip}:8222/varz`, { signal: AbortSignal.timeout(2_000) }),
    ).rejects.toThrow();
    const before = await varz();
    const first = await natsServerCertificate({ host: ip, port: 4222 });
    const started = Date.now();
    const renewed = await waitFor(
      "a renewed certificate on NATS's client port",
      async () => {
        const now = await natsServerCertificate({ host: ip, port: 4222 });
        return now.fingerprint256 === first.fingerprint256 ? undefined : now;
      },
      60_000,
      1_000,
    );
    process.stderr.write(
      `NATS presented a renewed SVID ${((Date.now() - started) / 1000).toFixed(0)}s later\n`,
    );
    expect(renewed.subjectaltname).toContain(`URI:spiffe://example.org/ns/${namespace}/sa/nats`);
    const after = await varz();
    expect(after.start).toBe(before.start);
    expect(after.config_load_time).not.toBe(before.config_load_time);
  });

  it('prints with --dry-run what the real API server accepts, object by object', async () => {
    // Checked against the deployed mesh: a server-side dry run cannot create a namespace or
    // CRDs for the objects that need them, and creating CRDs only to delete them seconds later
    // leaves the API server re-initialising their storage for minutes.
    const printed = await meshctl(['deploy', '--dry-run', ...imageFlags]);
    expect(printed.exitCode).toBe(0);
    const documents = parseAllDocuments(printed.stdout);
    expect(documents.length).toBeGreaterThan(40);
    const dryRun = await kubectl(
      [
        'apply',
        '--server-side',
        '--field-manager=dry-run-check',
        '--force-conflicts',
        '--dry-run=server',
        '-f',
        '-',
      ],
      printed.stdout,
    );
    expect(dryRun.stderr).toBe('');
    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout.split('\n').filter((line) => line !== '')).toHaveLength(documents.length);
  });

  it('reports a healthy mesh with status and its configuration with config', async () => {
    const status = await meshctl(['status']);
    expect(status.stdout).toContain('Connection to NGINX Service Mesh was successful.');
    expect(status.exitCode).toBe(0);
    const config = await meshctl(['config']);
    expect(config.exitCode).toBe(0);
    expect(JSON.parse(config.stdout)).toMatchObject({
      namespace,
      mtls: { mode: 'strict' },
      registry: { imageTag: 'lifecycle' },
    });
  });

  it('sets the CA bundle of the injection webhook from the controller before registering it', async () => {
    const webhook = await kubectl([
      'get',
      'mutatingwebhookconfiguration',
      'sidecar-injector-webhook-cfg.internal.builtin.nsm.nginx',
      '-o',
      'jsonpath={.webhooks[*].clientConfig.caBundle}',
    ]);
    const bundles = webhook.stdout.split(' ');
    expect(bundles).toHaveLength(2);
    expect(Buffer.from(bundles[0] ?? '', 'base64').toString()).toContain('BEGIN CERTIFICATE');
  });

  it('refuses to deploy a second mesh', async () => {
    const result = await meshctl(['deploy', ...imageFlags]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      `Error: mesh already exists: found existing NGINX Service Mesh in namespace '${namespace}'. To remove the existing mesh, run "nginx-meshctl remove"`,
    );
  });

  it('upgrades with the stored configuration and keeps a MeshConfig edit made with kubectl', async () => {
    const edited = await kubectl([
      'patch',
      'meshconfig',
      'nginx-mesh-config',
      '-n',
      namespace,
      '--type',
      'merge',
      '-p',
      '{"spec":{"accessControlMode":"deny","clientMaxBodySize":"8m"}}',
    ]);
    expect(edited.exitCode).toBe(0);
    const upgraded = await meshctl(['upgrade', '-y', '--image-tag', 'lifecycle-2']);
    expect(upgraded.stderr).toContain('Starting the controller... done');
    expect(upgraded.stdout).toContain('Upgrade complete.');
    expect(upgraded.exitCode).toBe(0);
    const config = JSON.parse((await meshctl(['config'])).stdout) as Record<string, unknown>;
    expect(config).toMatchObject({
      accessControlMode: 'deny',
      clientMaxBodySize: '8m',
      mtls: { mode: 'strict' },
      registry: { imageTag: 'lifecycle-2', server: 'registry.test/nsm' },
    });
    const spec = await kubectl([
      'get',
      'meshconfig',
      'nginx-mesh-config',
      '-n',
      namespace,
      '-o',
      'json',
    ]);
    expect((JSON.parse(spec.stdout) as { spec: Record<string, unknown> }).spec).toMatchObject({
      accessControlMode: 'deny',
      clientMaxBodySize: '8m',
    });
    const image = await kubectl([
      'get',
      'deployment',
      'nginx-mesh-controller',
      '-n',
      namespace,
      '-o',
      'jsonpath={.spec.template.spec.containers[0].image}',
    ]);
    expect(image.stdout).toBe('registry.test/nsm/nginx-mesh-controller:lifecycle-2');
  });

  it('refuses to remove without a terminal or --yes', async () => {
    const result = await meshctl(['remove']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('refusing to continue without confirmation');
  });

  it('removes, sidecars first, and leaves nothing labelled part of the mesh', async () => {
    const started = Date.now();
    const result = await meshctl(['remove', '-y']);
    process.stderr.write(`remove took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect(result.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(result.exitCode).toBe(0);
    expect(await leftovers()).toEqual([]);
  });

  it("says so, in NGINX Service Mesh's words, when there is nothing to remove", async () => {
    const result = await meshctl(['remove', '-y']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(`Error: namespace '${namespace}' not found`);
  });
});

describe('interrupted operations', () => {
  it('finishes an interrupted deploy and an interrupted remove when remove runs again', async () => {
    // A deploy killed half-way (no cleanup can run) leaves a partial installation...
    await signalAt(
      execa(binary, ['deploy', ...imageFlags, '-n', namespace], {
        env: { KUBECONFIG: testKubeconfig() },
        reject: false,
      }),
      'Starting NATS... done',
    );
    expect((await leftovers()).length).toBeGreaterThan(0);
    // ...which remove finds; this remove is killed in its turn...
    await signalAt(
      execa(binary, ['remove', '-y', '-n', namespace], {
        env: { KUBECONFIG: testKubeconfig() },
        reject: false,
      }),
      'Removing RBAC',
    );
    expect((await leftovers()).length).toBeGreaterThan(0);
    // ...and running remove again completes the job.
    const again = await meshctl(['remove', '-y']);
    expect(again.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(again.exitCode).toBe(0);
    expect(await leftovers()).toEqual([]);
  });
});

describe('signals', () => {
  it('cleans up after a deploy interrupted with Ctrl-C and exits 130', async () => {
    const run = execa(binary, ['deploy', ...imageFlags, '-n', namespace], {
      env: { KUBECONFIG: testKubeconfig() },
      reject: false,
      // Within the test's own bound, so that a cleanup that hangs shows where it stopped.
      timeout: 160_000,
    });
    await signalAt(run, 'Starting NATS... done', 'SIGINT');
    const result = await run;
    if (result.timedOut) throw new Error(`deploy did not end after SIGINT:\n${result.stderr}`);
    expect(result.stderr).toContain(
      'Received signal while deploying, waiting for a predictable state before aborting',
    );
    expect(result.stderr).toContain('All NGINX Service Mesh resources have been deleted.');
    expect(result.exitCode).toBe(130);
    expect(await leftovers()).toEqual([]);
  });
});

describe('errors', () => {
  it('names the verb and resource a user without the rights lacks, and applies nothing', async () => {
    const account = 'mesh-viewer';
    await kubectl(['create', 'serviceaccount', account, '-n', 'default']);
    await kubectl([
      'create',
      'clusterrolebinding',
      account,
      '--clusterrole=view',
      `--serviceaccount=default:${account}`,
    ]);
    try {
      const token = await kubectl(['create', 'token', account, '-n', 'default']);
      expect(token.exitCode).toBe(0);
      const admin = parseYaml(readFileSync(testKubeconfig(), 'utf8')) as {
        clusters: { cluster: Record<string, string> }[];
      };
      const kubeconfig = join(scratch, 'viewer.kubeconfig');
      writeFileSync(
        kubeconfig,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'test', cluster: admin.clusters[0]?.cluster }],
          users: [{ name: account, user: { token: token.stdout.trim() } }],
          contexts: [{ name: 'viewer', context: { cluster: 'test', user: account } }],
          'current-context': 'viewer',
        }),
      );
      const result = await meshctl(['deploy', ...imageFlags], kubeconfig);
      expect(result.exitCode).toBe(1);
      const [message, hint] = result.stderr.split('\n');
      expect(message).toMatch(
        /^Error: .*forbidden: User "system:serviceaccount:default:mesh-viewer" cannot list resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope$/,
      );
      expect(hint).toContain('kubectl auth can-i');
      expect(await leftovers()).toEqual([]);
    } finally {
      await kubectl(['delete', 'clusterrolebinding', account]);
      await kubectl(['delete', 'serviceaccount', account, '-n', 'default']);
    }
  });

  it('says in one line that no cluster answers', async () => {
    const kubeconfig = join(scratch, 'nowhere.kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'nowhere', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'u', user: { token: 'x' } }],
        contexts: [{ name: 'c', context: { cluster: 'nowhere', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    const result = await meshctl(['deploy', ...imageFlags], kubeconfig);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(
      /^Error: unable to connect to Kubernetes, please validate your kubeconfig: connect ECONNREFUSED 127\.0\.0\.1:1$/,
    );
  });
});
