// `supportpkg`: one tarball with what a support case needs, collected best effort: versions, the
// control plane's pods, logs, events and objects, the installation's cluster objects, the mesh's
// policies, and every injected pod's sidecar logs. It is written whole or not at all.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { MeshctlError, describeError } from '../../errors';
import { CLI_NAME } from '../../manifests/constants';
import { tarArchive } from '../../render/tar';
import type { BuildInfo } from '../../render/versions';
import { renderClientVersion, renderComponentVersions } from '../../render/versions';
import type { Clock } from '../../runtime/clock';
import type { Io } from '../../runtime/io';
import type { KubeAccess } from '../../runtime/kube/access';
import type { GlobalOptionsReader } from '../global-flags';
import type { LifecycleDeps } from '../lifecycle';
import { connectClient, requireInstallation } from '../lifecycle';
import type { CommandSpec } from '../spec';
import { fetchComponentVersions } from '../version/run-version';

export interface SupportDeps extends LifecycleDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
  readonly clock: Clock;
  readonly build: BuildInfo;
  /** The directory -o defaults to. */
  readonly cwd: () => string;
}

/** nsm-supportpkg-<UTC yyyymmddHHMMSS>, the package's name and its top directory. */
export function packageName(now: Date): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `nsm-supportpkg-${stamp}`;
}

export function supportpkgCommand(globals: GlobalOptionsReader, deps: SupportDeps): CommandSpec {
  return {
    name: 'supportpkg',
    short: 'Create an NGINX Service Mesh support package',
    long: [
      'Create an NGINX Service Mesh support package: one .tar.gz with the versions, the control',
      "plane's pods, logs, events and objects, the installation's cluster objects, the mesh's",
      "policies, and the logs of every injected pod's sidecar. Secret values and credentials are",
      'REDACTED. Parts that cannot be read are listed in supportpkg-creation-logs.txt inside it.',
    ].join('\n'),
    flags: [
      {
        long: 'output',
        short: 'o',
        type: 'string',
        usage: 'output directory for the support package (default: the current directory)',
        defaultValue: '',
      },
      {
        long: 'disable-sidecar-logs',
        type: 'bool',
        usage: 'disable the collection of sidecar logs',
      },
    ],
    action: async (context) => {
      const options = globals(context);
      const { namespace } = options;
      // Checked before the cluster is asked anything: a package that cannot be written is not made.
      const dir = resolve(context.string('output') || deps.cwd());
      if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
        throw new MeshctlError(`output directory "${dir}" does not exist or is not a directory`);
      const client = await connectClient(deps, options);
      await requireInstallation(client, namespace);
      const now = deps.clock.now();
      const name = packageName(now);
      const path = resolve(dir, `${name}.tar.gz`);
      if (existsSync(path)) throw new MeshctlError(`support package "${path}" already exists`);
      deps.io.out.write(`Saving support package to "${path}"...\n`);
      const { stringify } = await import('yaml');
      const { collectSupportPackage } = await import('./collect');
      const files = await collectSupportPackage(client, {
        namespace,
        sidecarLogs: !context.bool('disable-sidecar-logs'),
        stringify,
        now,
        versionText: async () => {
          const client = renderClientVersion(CLI_NAME, deps.build);
          try {
            const versions = await fetchComponentVersions(options, deps.kube);
            return `${client}${renderComponentVersions(versions)}`;
          } catch (error) {
            return `${client}control plane versions unavailable: ${describeError(error)}\n`;
          }
        },
      });
      const archive = tarArchive(
        files.map((file) => ({ ...file, path: `${name}/${file.path}` })),
        now,
      );
      // Loaded here, not at every start of the executable.
      const { gzipSync } = await import('node:zlib');
      const { writeFileAtomic } = await import('../../runtime/svid/files');
      try {
        await writeFileAtomic(path, gzipSync(archive), 0o600);
      } catch (error) {
        throw new MeshctlError(
          `cannot write the support package "${path}": ${describeError(error)}`,
        );
      }
      deps.io.out.write('Done.\n');
    },
  };
}
