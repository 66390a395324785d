// Applies an install plan step by step with server-side apply under one field manager, waiting
// after each step for what the next one needs. Applying is idempotent: a step that was applied
// before is applied again to the same result, so an interrupted upgrade can simply be re-run. A
// step of objects others may own (the Gateway API CRDs) leaves theirs alone.
import {
  FIELD_MANAGER,
  PART_OF_LABEL,
  PART_OF_VALUE,
  TLS_SECRET_CA_KEY,
} from '../../manifests/constants';
import type { CaBundleSource, InstallStep } from '../../manifests/install/plan';
import type { Manifest } from '../../manifests/install/objects';
import { describeRef, objectPath } from '../../manifests/install/resources';
import type { KubeClient, KubeObject } from '../kube/client';
import { KubeApiError } from '../kube/client';
import { MeshctlError } from '../../errors';
import type { WaitContext } from './waits';
import { waitFor } from './waits';

function refOf(manifest: Manifest): {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
} {
  return {
    apiVersion: manifest.apiVersion,
    kind: manifest.kind,
    name: manifest.metadata.name,
    ...(manifest.metadata.namespace === undefined
      ? {}
      : { namespace: manifest.metadata.namespace }),
  };
}

/** The CA of a serving-certificate Secret (base64, as caBundle wants it), or undefined. */
async function caBundleOf(client: KubeClient, source: CaBundleSource): Promise<string | undefined> {
  const secret = await client.get<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${encodeURIComponent(source.namespace)}/secrets/${encodeURIComponent(source.secret)}`,
  );
  const ca = secret?.data?.[TLS_SECRET_CA_KEY];
  return ca === undefined || ca === '' ? undefined : ca;
}

function withCaBundle(manifest: Manifest, caBundle: string): Manifest {
  if (manifest.kind === 'APIService') {
    return { ...manifest, spec: { ...(manifest.spec as object), caBundle } };
  }
  const webhooks = (manifest.webhooks as readonly { clientConfig: object }[]).map((webhook) => ({
    ...webhook,
    clientConfig: { ...webhook.clientConfig, caBundle },
  }));
  return { ...manifest, webhooks };
}

/** The object with the caBundle its backend published, when the plan asks for one. */
async function completed(
  client: KubeClient,
  manifest: Manifest,
  sources: readonly CaBundleSource[],
): Promise<Manifest> {
  const source = sources.find(
    (each) => each.kind === manifest.kind && each.name === manifest.metadata.name,
  );
  if (source === undefined) return manifest;
  const caBundle = await caBundleOf(client, source);
  return caBundle === undefined ? manifest : withCaBundle(manifest, caBundle);
}

/** Applies one object; an API refusal names the object. */
export async function applyObject(client: KubeClient, manifest: Manifest): Promise<void> {
  const ref = refOf(manifest);
  try {
    await client.apply(objectPath(ref), manifest, FIELD_MANAGER);
  } catch (error) {
    if (error instanceof KubeApiError) {
      throw new MeshctlError(`applying ${describeRef(ref)}: ${error.message}`, {
        cause: error,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
      });
    }
    throw error;
  }
}

/** Whether the object exists without the part-of label: someone else's, to be left alone. */
async function isForeign(client: KubeClient, manifest: Manifest): Promise<boolean> {
  const found = await client.get<KubeObject>(objectPath(refOf(manifest)));
  return found !== undefined && found.metadata?.labels?.[PART_OF_LABEL] !== PART_OF_VALUE;
}

export async function applyStep(
  step: InstallStep,
  context: WaitContext,
  transform: (manifest: Manifest) => Manifest = (manifest) => manifest,
): Promise<void> {
  const kept = new Set<string>();
  for (const manifest of step.objects) {
    const described = describeRef(refOf(manifest));
    if (step.keepForeign === true && (await isForeign(context.client, manifest))) {
      context.progress.detail(`keeping ${described}, which was there before`);
      kept.add(manifest.metadata.name);
      continue;
    }
    context.progress.detail(`applying ${described}`);
    await applyObject(
      context.client,
      transform(await completed(context.client, manifest, step.caBundles)),
    );
  }
  for (const wait of step.waits) {
    if (wait.kind === 'crd-established' && kept.has(wait.name)) continue;
    await waitFor(wait, context);
  }
}
