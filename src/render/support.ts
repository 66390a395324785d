// What a support package prints: kubectl-like tables of pods and events, multi-object YAML with
// a banner naming each object, and the redactions that keep credentials out of it. Pure.
import { renderTable } from './table';
import type { YamlStringify } from './yaml-documents';

/** The value printed in place of a secret. */
export const REDACTED = 'REDACTED';

interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly creationTimestamp?: string;
  readonly managedFields?: unknown;
}

export interface SupportObject {
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
  readonly [key: string]: unknown;
}

/** kubectl's age: 45s, 12m, 5h, 3d. */
export function age(since: string | undefined, now: Date): string {
  const started = since === undefined ? NaN : Date.parse(since);
  if (Number.isNaN(started)) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now.getTime() - started) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3_600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

interface PodLike extends SupportObject {
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly containerStatuses?: readonly {
      readonly ready?: boolean;
      readonly restartCount?: number;
    }[];
  };
}

/** NAME READY STATUS RESTARTS AGE IP NODE, as `kubectl get pods -o wide` prints them. */
export function renderPodTable(pods: readonly PodLike[], now: Date): string {
  const rows = pods.map((pod) => {
    const statuses = pod.status?.containerStatuses ?? [];
    const ready = statuses.filter((status) => status.ready === true).length;
    const restarts = statuses.reduce((sum, status) => sum + (status.restartCount ?? 0), 0);
    return [
      pod.metadata?.name ?? '',
      `${ready}/${statuses.length}`,
      pod.status?.phase ?? 'Unknown',
      String(restarts),
      age(pod.metadata?.creationTimestamp, now),
      pod.status?.podIP ?? '<none>',
      pod.spec?.nodeName ?? '<none>',
    ];
  });
  return renderTable([['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE'], ...rows]);
}

interface EventLike extends SupportObject {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly count?: number;
  readonly lastTimestamp?: string;
  readonly eventTime?: string;
  readonly involvedObject?: { readonly kind?: string; readonly name?: string };
}

/** LAST SEEN TYPE REASON OBJECT MESSAGE, oldest first, as `kubectl get events` prints them. */
export function renderEventTable(events: readonly EventLike[], now: Date): string {
  const when = (event: EventLike): string =>
    event.lastTimestamp ?? event.eventTime ?? event.metadata?.creationTimestamp ?? '';
  const sorted = [...events].sort((a, b) => (when(a) < when(b) ? -1 : when(a) > when(b) ? 1 : 0));
  const rows = sorted.map((event) => [
    age(when(event) || undefined, now),
    event.type ?? '',
    event.reason ?? '',
    `${(event.involvedObject?.kind ?? '').toLowerCase()}/${event.involvedObject?.name ?? ''}`,
    (event.message ?? '').replace(/\s+/g, ' ').trim(),
  ]);
  return renderTable([['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'], ...rows]);
}

/** The object without managedFields, which only repeat the rest. */
function lean(object: SupportObject): SupportObject {
  if (object.metadata?.managedFields === undefined) return object;
  const metadata: Record<string, unknown> = { ...object.metadata };
  delete metadata.managedFields;
  return { ...object, metadata };
}

/**
 * Objects as YAML documents, each after a "---" line and a banner of "#" lines naming it, so a
 * reader finds one object in a long file.
 */
export function renderYamlObjects(
  objects: readonly SupportObject[],
  stringify: YamlStringify,
): string {
  return objects
    .map((object) => {
      const where = object.metadata?.namespace === undefined ? '' : `${object.metadata.namespace}/`;
      const title = `# ${object.kind ?? 'Object'} ${where}${object.metadata?.name ?? ''}`;
      const rule = '#'.repeat(Math.max(title.length, 20));
      const body = stringify(lean(object), { lineWidth: 0, aliasDuplicateObjects: false });
      return `---\n${rule}\n${title}\n${rule}\n${body}`;
    })
    .join('');
}

/** A Secret with every value of data and stringData replaced, its keys kept. */
export function redactSecret(secret: SupportObject): SupportObject {
  const redact = (values: unknown): unknown =>
    typeof values === 'object' && values !== null
      ? Object.fromEntries(Object.keys(values).map((key) => [key, REDACTED]))
      : values;
  return {
    ...secret,
    ...(secret.data === undefined ? {} : { data: redact(secret.data) }),
    ...(secret.stringData === undefined ? {} : { stringData: redact(secret.stringData) }),
  };
}

/** Field names whose values are credentials wherever they appear in a configuration. */
const SECRET_FIELD = /password|passwd|secret|token|privatekey|^key$|^username$/i;

/** A configuration with every credential field's value replaced, at any depth. */
export function redactConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactConfig);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => [
      key,
      SECRET_FIELD.test(key) && (typeof field === 'string' || typeof field === 'object')
        ? field === '' || field === null
          ? field
          : REDACTED
        : redactConfig(field),
    ]),
  );
}
