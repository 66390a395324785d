// Text for `nginx-meshctl version`.

export interface BuildInfo {
  /** Semantic version without a leading "v". */
  readonly version: string;
  /** Short commit hash of the build, or "local". */
  readonly commit: string;
}

/** First line: the client's version, with the commit as semver build metadata. */
export function renderClientVersion(cliName: string, build: BuildInfo): string {
  const version = build.version.startsWith('v') ? build.version : `v${build.version}`;
  return `${cliName} - ${version}+${build.commit}\n`;
}

/** One line per control-plane component, sorted by name so that output is stable. */
export function renderComponentVersions(
  versions: Readonly<Record<string, readonly string[]>>,
): string {
  return Object.keys(versions)
    .sort()
    .map((name) => `${name} - v${(versions[name] ?? []).join(', v')}\n`)
    .join('');
}

/** Why versions of the other components are missing, with NGINX Service Mesh's checklist. */
export function renderVersionsUnavailable(
  namespace: string,
  kubeconfig: string,
  reason: string,
): string {
  return [
    'Unable to get versions for remaining components, make sure:',
    `- NGINX Service Mesh is installed in "${namespace}" namespace`,
    `- Your kubectl config file "${kubeconfig}" is valid`,
    '- Your Kubernetes context is set to a valid and running cluster, see "kubectl config get-contexts"',
    `Error message: ${reason}`,
    '',
  ].join('\n');
}
