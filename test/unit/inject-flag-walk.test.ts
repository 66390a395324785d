// No inject flag silently does nothing. Every flag of `inject` but -f (which chooses where the
// manifests come from; inject-source.test.ts walks its forms) is given a non-default value, and
// the injected output must change, both offline and with a deployed mesh's configuration, which
// must not take the flag's effect away. A flag added without a sample fails here.
import { injectCommand } from '../../src/commands/inject';
import { readGlobalOptions } from '../../src/commands/global-flags';
import { renderMeshConfigJson } from '../../src/manifests/mesh-config/render';
import { buildMeshConfig, defaultDeployInput } from '../../src/manifests/mesh-config';
import type { KubeAccess } from '../../src/runtime/kube/access';
import { runCli, unreachableKube } from '../support/cli';
import { createBufferedIo, readOnlyKube } from '../support/fakes';

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: web:1
          ports: [{containerPort: 8080}]
`;

/** Non-default values, by flag. */
const SAMPLES: Readonly<Record<string, readonly string[]>> = {
  'ignore-incoming-ports': ['--ignore-incoming-ports', '5432,5433'],
  'ignore-outgoing-ports': ['--ignore-outgoing-ports', '1433'],
  'sidecar-layout': ['--sidecar-layout', 'classic'],
};
const INPUT_FLAG = 'file';

function meshReachable(): KubeAccess {
  const outcome = buildMeshConfig(
    { ...defaultDeployInput('2.0.0'), mtlsMode: 'strict', registryServer: 'registry.test/nsm' },
    { namespace: 'nginx-mesh', files: new Map() },
  );
  if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
  const data = { 'meshconfig.json': renderMeshConfigJson(outcome.config) };
  return readOnlyKube(() => Promise.resolve({ status: 200, body: JSON.stringify({ data }) }));
}

const unused = (): Promise<string> => Promise.reject(new Error('flags only'));
const flags =
  injectCommand(readGlobalOptions, {
    io: createBufferedIo(),
    input: { readFile: unused, readStdin: unused, readUrl: unused },
    clientVersion: '1.2.3',
    kube: unreachableKube,
  }).flags ?? [];

describe('every inject flag', () => {
  it('but -f has a sample value', () => {
    expect(
      flags
        .map((flag) => flag.long)
        .filter((long) => long !== INPUT_FLAG && SAMPLES[long] === undefined),
    ).toEqual([]);
  });

  it.each(
    flags
      .filter((flag) => flag.long !== INPUT_FLAG)
      .flatMap((flag) =>
        (['offline', 'with a deployed mesh'] as const).map((where) => [flag.long, where] as const),
      ),
  )('--%s changes the injected output %s', async (long, where) => {
    const kube = where === 'offline' ? unreachableKube : meshReachable();
    const run = (extra: readonly string[]) =>
      runCli(['inject', ...extra], {
        kube,
        input: { readStdin: () => Promise.resolve(DEPLOYMENT) },
      });
    const plain = await run([]);
    const flagged = await run(SAMPLES[long] ?? []);
    expect([plain.code, flagged.code]).toEqual([0, 0]);
    expect(plain.stderr.split('\n')[0]).toMatch(
      where === 'offline' ? /^no mesh configuration/ : /^using the mesh configuration/,
    );
    expect(flagged.stdout).not.toBe(plain.stdout);
  });
});
