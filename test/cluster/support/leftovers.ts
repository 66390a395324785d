// What of a mesh is on the test cluster: every object labelled part of it, of every listable
// resource type, so that a removal is checked against everything the API server serves.
import { kubectl } from './mesh-apps';
import { waitFor } from './kube';

const PART_OF = 'app.kubernetes.io/part-of=nginx-service-mesh';

/** Every object labelled part-of the mesh, of every listable type, as "kind/name" lines. */
export async function leftovers(): Promise<string[]> {
  // A type listed a moment ago may be gone when it is read (a CRD being deleted): ask again.
  for (let attempt = 1; ; attempt += 1) {
    const types = await kubectl(['api-resources', '--verbs=list', '-o', 'name']);
    expect(types.exitCode).toBe(0);
    const names = types.stdout
      .split('\n')
      .filter(
        (line) =>
          line !== '' &&
          line !== 'events' &&
          line !== 'componentstatuses' &&
          line !== 'events.events.k8s.io',
      );
    const listed = await kubectl(['get', names.join(','), '-A', '-l', PART_OF, '-o', 'name']);
    // Deprecation warnings (v1 Endpoints) are not errors.
    const errors = listed.stderr
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('Warning:'));
    const vanished = errors.every((line) => line.includes("doesn't have a resource type"));
    if (errors.length === 0 || !vanished || attempt === 5) {
      expect(errors).toEqual([]);
      return listed.stdout.split('\n').filter((line) => line !== '');
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** No mesh of an earlier test file is on the cluster any more. */
export async function waitForCleanCluster(): Promise<void> {
  await waitFor(
    'a cluster without mesh objects',
    async () => ((await leftovers()).length === 0 ? true : undefined),
    90_000,
    1_000,
  );
}
