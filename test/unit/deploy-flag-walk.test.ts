// No deploy flag silently does nothing. Every flag of buildDeployFlags is walked: each of its
// non-default values (every choice, true for a switch, the samples below for free text) is
// deployed next to the default, and what the mesh's consumers see is compared:
//   - the install plan without the stored configuration: workloads' images, args, Secrets...;
//   - the mesh settings the controller builds snapshots from (ConfigMap meshconfig read by
//     meshBaseFromConfigMap, MeshConfig nginx-mesh-config laid over it by buildMeshSettings);
//   - the injection settings `inject` reads from ConfigMap meshconfig.
// Storing a value in the configuration is not an effect: only what these consumers read counts.
// A value none of them sees must be named in a warning or a refusal by buildMeshConfig, and the
// flag's usage text must say so ("with a warning", "refused"). A flag added without a consumer,
// a warning or a refusal fails here; so does a free-text flag without a sample.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsFromMeshConfig } from '../../src/commands/inject/mesh-settings';
import { MESH_CONFIG_MAP_KEY, MESH_CONFIG_MAP_NAME } from '../../src/manifests/constants';
import type { InjectionSettings } from '../../src/manifests/inject/types';
import type { Manifest } from '../../src/manifests/install/objects';
import { buildInstallPlan, planObjects } from '../../src/manifests/install/plan';
import {
  buildDeployFlags,
  buildMeshConfig,
  defaultDeployInput,
  deployInputFlags,
  inputKeyOf,
} from '../../src/manifests/mesh-config';
import type { DeployInput } from '../../src/manifests/mesh-config';
import type { FlagSpec } from '../../src/manifests/flag-spec';
import { meshBaseFromConfigMap } from '../../src/manifests/snapshot/mesh-base';
import { buildMeshSettings } from '../../src/manifests/snapshot/mesh-settings';
import { FIXTURE_CERT, FIXTURE_KEY } from '../support/pem-fixtures';

const VERSION = '2.0.0';
const NAMESPACE = 'nginx-mesh';
const root = join(__dirname, '..', '..');

const FILES = new Map([
  ['/keys/gcr.json', '{"type":"service_account"}\n'],
  [
    '/ca/upstream.yaml',
    'apiVersion: v1\nupstreamAuthority: disk\nconfig:\n  cert_file_path: /ca/ca.pem\n  key_file_path: /ca/ca.key\n',
  ],
  ['/ca/ca.pem', FIXTURE_CERT],
  ['/ca/ca.key', FIXTURE_KEY],
]);

type Value = string | boolean | readonly string[];

/** One non-default value of a flag, deployed over `baseline` (which both sides share). */
interface Sample {
  readonly value: Value;
  readonly baseline?: Partial<DeployInput>;
}

const EXPORTER = 'type=otlp,host=otel.observability.svc,port=4317';

/** Values for the flags without choices or a switch: each differs from the flag's default. */
const SAMPLES: Readonly<Record<string, readonly Sample[]>> = {
  'client-max-body-size': [{ value: '0' }],
  environment: [{ value: 'openshift' }],
  'image-tag': [{ value: '9.9.9' }],
  'mtls-ca-ttl': [{ value: '48h' }],
  'mtls-svid-ttl': [{ value: '30m' }],
  'mtls-trust-domain': [{ value: 'corp.test' }],
  'mtls-upstream-ca-conf': [{ value: '/ca/upstream.yaml' }],
  'prometheus-address': [{ value: 'prometheus.monitoring:9090' }],
  'registry-key': [{ value: '/keys/gcr.json' }],
  // The credentials only exist in pairs: one member changes while the other is set.
  'registry-password': [
    { value: 'two', baseline: { registryUsername: 'robot', registryPassword: 'one' } },
  ],
  'registry-username': [
    { value: 'droid', baseline: { registryUsername: 'robot', registryPassword: 'one' } },
  ],
  'registry-server': [{ value: 'registry.test/nsm' }],
  'telemetry-exporters': [{ value: [EXPORTER] }],
  'telemetry-sampler-ratio': [
    { value: '0.5' },
    { value: '0.5', baseline: { telemetryExporters: [EXPORTER] } },
  ],
  'nginx-mesh-controller-image': [{ value: 'dev.test/controller:x' }],
  'nginx-mesh-metrics-image': [{ value: 'dev.test/metrics:x' }],
  'nginx-mesh-sidecar-image': [{ value: 'dev.test/sidecar:x' }],
  'nginx-mesh-init-image': [{ value: 'dev.test/init:x' }],
  'cert-reloader-image': [{ value: 'dev.test/cert-reloader:x' }],
};

/**
 * The flags that shape the command, not the mesh (deployInputFlags leaves them out), and the test
 * file that proves each one's effect.
 */
const COMMAND_ONLY: Readonly<Record<string, { reason: string; test: string }>> = {
  'dry-run': {
    reason: 'prints the install plan instead of applying it',
    test: 'test/golden/install-manifests.test.ts',
  },
  'cleanup-on-error': {
    reason: 'removes what a failed deploy applied, unless false',
    test: 'test/unit/deploy-cleanup.test.ts',
  },
};

const INJECT_DEFAULTS: InjectionSettings = {
  meshNamespace: 'inject-default',
  sidecarImage: 'inject-default/sidecar',
  initImage: 'inject-default/init',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

/** What the consumers see of one deploy, or what buildMeshConfig said instead. */
interface Observation {
  readonly consumers: Readonly<Record<string, string>>;
  /** Warnings and refusals, one line each. */
  readonly said: readonly string[];
  readonly refused: boolean;
}

const encode = (text: string): string => Buffer.from(text).toString('base64');

function isStoredConfiguration(object: Manifest): boolean {
  return (
    (object.kind === 'ConfigMap' && object.metadata.name === MESH_CONFIG_MAP_NAME) ||
    object.kind === 'MeshConfig'
  );
}

function observe(input: DeployInput): Observation {
  const outcome = buildMeshConfig(input, { namespace: NAMESPACE, files: FILES });
  if ('problems' in outcome) return { consumers: {}, said: outcome.problems, refused: true };
  const { config, secrets } = outcome;
  // As deploy builds it (run-deploy.ts).
  const objects = planObjects(
    buildInstallPlan(
      { config, version: VERSION, secrets, upstreamCa: secrets.upstreamAuthority !== undefined },
      encode,
    ),
  );
  const configMap = objects.find(
    (object) => object.kind === 'ConfigMap' && object.metadata.name === MESH_CONFIG_MAP_NAME,
  ) as (Manifest & { data: Record<string, string> }) | undefined;
  const meshConfig = objects.find((object) => object.kind === 'MeshConfig');
  if (configMap === undefined || meshConfig === undefined) {
    throw new Error('the install plan stores no mesh configuration');
  }
  const controllerMesh = buildMeshSettings(meshBaseFromConfigMap(configMap).mesh, meshConfig, []);
  const injection = settingsFromMeshConfig(
    configMap.data[MESH_CONFIG_MAP_KEY] ?? '',
    INJECT_DEFAULTS,
  );
  return {
    consumers: {
      'install plan': JSON.stringify(objects.filter((object) => !isStoredConfiguration(object))),
      'controller mesh settings': JSON.stringify(controllerMesh),
      'inject settings': JSON.stringify(injection),
    },
    said: outcome.warnings,
    refused: false,
  };
}

function samplesOf(flag: FlagSpec): readonly Sample[] {
  const given = SAMPLES[flag.long];
  if (given !== undefined) return given;
  if (flag.type === 'bool') return [{ value: flag.defaultValue !== true }];
  return (flag.choices ?? [])
    .filter((choice) => choice !== flag.defaultValue)
    .map((value) => ({ value }));
}

const flags = buildDeployFlags(VERSION);
const meshFlags = new Set(deployInputFlags());

interface Case {
  readonly name: string;
  readonly flag: FlagSpec;
  readonly sample: Sample;
}

const cases: Case[] = flags
  .filter((flag) => meshFlags.has(flag.long))
  .flatMap((flag) =>
    samplesOf(flag).map((sample) => ({
      name: `--${flag.long} ${JSON.stringify(sample.value)}${sample.baseline === undefined ? '' : ` over ${JSON.stringify(sample.baseline)}`}`,
      flag,
      sample,
    })),
  );

/** Which consumers saw the change, or what buildMeshConfig said about the flag. */
function verdictOf({ flag, sample }: Case): { verdict: string; said: string } {
  const baseline: DeployInput = { ...defaultDeployInput(VERSION), ...sample.baseline };
  const before = observe(baseline);
  const after = observe({ ...baseline, [inputKeyOf(flag.long)]: sample.value });
  if (before.refused) throw new Error(`the baseline is refused: ${before.said.join('; ')}`);
  const changed = Object.keys(after.consumers).filter(
    (consumer) => after.consumers[consumer] !== before.consumers[consumer],
  );
  if (changed.length > 0) return { verdict: `read by ${changed.join(', ')}`, said: '' };
  const said = after.said.find((line) => line.includes(`--${flag.long}`));
  if (said === undefined) return { verdict: 'silently ignored', said: '' };
  return { verdict: after.refused ? 'refused' : 'warned', said };
}

describe('every deploy flag', () => {
  it('has at least one non-default value to try', () => {
    const untried = flags
      .filter((flag) => meshFlags.has(flag.long) && samplesOf(flag).length === 0)
      .map((flag) => flag.long);
    expect(untried).toEqual([]);
  });

  it.each(cases.map((each) => [each.name, each] as const))(
    '%s is read by a consumer, or warned about or refused, and its usage says so',
    (_name, each) => {
      const { verdict, said } = verdictOf(each);
      expect(verdict).not.toBe('silently ignored');
      if (verdict === 'refused') {
        // A refusal of a value NGINX Service Mesh took, not a typo in the sample.
        expect(said).toContain(`--${each.flag.long} ${String(each.sample.value)} is not supported`);
        expect(each.flag.usage).toContain('refused');
      }
      if (verdict === 'warned') expect(each.flag.usage).toContain('with a warning');
    },
  );

  it.each(Object.entries(COMMAND_ONLY).map(([flag, { reason, test }]) => [flag, reason, test]))(
    '--%s belongs to the command (it %s) and %s proves its effect',
    (flag, _reason, test) => {
      expect(flags.some((each) => each.long === flag)).toBe(true);
      expect(meshFlags.has(flag)).toBe(false);
      expect(existsSync(join(root, test))).toBe(true);
      expect(readFileSync(join(root, test), 'utf8')).toContain(`--${flag}`);
    },
  );

  it('leaves no flag out of the mesh configuration but the command-only ones', () => {
    expect(flags.filter((flag) => !meshFlags.has(flag.long)).map((flag) => flag.long)).toEqual(
      Object.keys(COMMAND_ONLY),
    );
  });
});
