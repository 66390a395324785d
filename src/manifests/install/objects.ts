// The shape of an installed object and the labels every one of them carries. Pure.
import { FIELD_MANAGER, PART_OF_LABEL, PART_OF_VALUE } from '../constants';

export type Labels = Readonly<Record<string, string>>;

export interface ManifestMetadata {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Labels;
  readonly annotations?: Labels;
}

/** A Kubernetes object as deploy applies it. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ManifestMetadata;
  readonly [field: string]: unknown;
}

export const NAME_LABEL = 'app.kubernetes.io/name';
export const VERSION_LABEL = 'app.kubernetes.io/version';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** Labels of every object of one component: part-of (how remove finds it), name, version. */
export function componentLabels(component: string, version: string): Labels {
  return {
    [PART_OF_LABEL]: PART_OF_VALUE,
    [NAME_LABEL]: component,
    [VERSION_LABEL]: version,
    [MANAGED_BY_LABEL]: FIELD_MANAGER,
  };
}

export function meta(
  name: string,
  namespace: string | undefined,
  labels: Labels | undefined,
  annotations?: Labels,
): ManifestMetadata {
  return {
    name,
    ...(namespace === undefined ? {} : { namespace }),
    ...(labels === undefined ? {} : { labels }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}
