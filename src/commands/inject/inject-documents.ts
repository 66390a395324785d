// `inject` over whole manifests: YAML (multi-document) or JSON (one object or a List), every
// workload kind, other documents passed through unchanged and in order. Pure: text in, text and
// a report out; either every document is handled or an error names the first bad one.
import { parseAllDocuments, stringify } from 'yaml';
import { MeshctlError } from '../../errors';
import { MAX_DOCUMENT_DEPTH } from '../../manifests/constants';
import { nestsDeeperThan } from '../../manifests/document-depth';
import { renderYamlDocuments } from '../../render/yaml-documents';
import type {
  InjectionOutcome,
  InjectionSettings,
  PodOwner,
  PodTemplate,
} from '../../manifests/inject/types';

export type InjectPod = (
  template: PodTemplate,
  owner: PodOwner,
  settings: InjectionSettings,
  objectName: string,
) => InjectionOutcome;

export interface InjectReportEntry {
  /** "<kind>/<name>" of the workload, with its namespace when set. */
  readonly object: string;
  readonly outcome: 'injected' | 'unchanged' | 'skipped';
  readonly reason?: string | undefined;
  readonly warnings: readonly string[];
}

export interface InjectDocumentsResult {
  readonly text: string;
  readonly report: readonly InjectReportEntry[];
  /** Documents that are not workloads, passed through. */
  readonly passedThrough: number;
}

type Json = Record<string, unknown>;

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(object: Json): string {
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : '<unnamed>';
  const kind = typeof object.kind === 'string' ? object.kind.toLowerCase() : 'object';
  return `${kind}/${name}`;
}

/** Returns a copy of object with value set at path (the path's parents must exist as objects). */
function withPath(object: Json, path: readonly string[], value: unknown): Json {
  const [head, ...rest] = path;
  if (head === undefined) return object;
  const child = object[head];
  return {
    ...object,
    [head]: rest.length === 0 ? value : withPath(isObject(child) ? child : {}, rest, value),
  };
}

function readPath(object: Json, path: readonly string[]): unknown {
  let current: unknown = object;
  for (const key of path) current = isObject(current) ? current[key] : undefined;
  return current;
}

interface Context {
  readonly inject: InjectPod;
  readonly settings: InjectionSettings;
  readonly report: InjectReportEntry[];
  passedThrough: number;
}

function injectObject(object: unknown, context: Context): unknown {
  if (!isObject(object)) {
    context.passedThrough += 1;
    return object;
  }
  const kind = typeof object.kind === 'string' ? object.kind : '';
  if (kind.endsWith('List') && Array.isArray(object.items)) {
    return { ...object, items: object.items.map((item) => injectObject(item, context)) };
  }
  const isPod = kind === 'Pod';
  const templatePath = isPod ? [] : TEMPLATE_PATHS[kind];
  if (templatePath === undefined) {
    context.passedThrough += 1;
    return object;
  }
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : '';
  const template = (
    isPod ? { metadata: object.metadata, spec: object.spec } : readPath(object, templatePath)
  ) as PodTemplate | undefined;
  const label = `${describe(object)}${typeof metadata.namespace === 'string' ? ` (namespace ${metadata.namespace})` : ''}`;
  if (template === undefined || !isObject(template)) {
    throw new MeshctlError(`${label}: no pod template at ${templatePath.join('.')}`);
  }
  const outcome = context.inject(
    template,
    { kind: kind.toLowerCase(), name },
    context.settings,
    name,
  );
  if (outcome.status !== 'injected') {
    context.report.push({
      object: label,
      outcome: outcome.status,
      reason: outcome.reason,
      warnings: [],
    });
    return object;
  }
  context.report.push({ object: label, outcome: 'injected', warnings: outcome.warnings });
  if (isPod) return { ...object, metadata: outcome.template.metadata, spec: outcome.template.spec };
  return withPath(object, templatePath, outcome.template);
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/** The error for a document nested deeper than MAX_DOCUMENT_DEPTH (1-based index). */
function tooDeep(source: string, index: number): MeshctlError {
  return new MeshctlError(
    `${source}: document ${index}: nested deeper than ${MAX_DOCUMENT_DEPTH} levels`,
  );
}

/** V8's stack overflow, which the yaml library reports as a document error of its message. */
const STACK_OVERFLOW = /Maximum call stack size exceeded/;

/**
 * Parses YAML documents; a syntax error names the document (1-based) and line, and a document
 * nested deeper than MAX_DOCUMENT_DEPTH (or so deep that parsing it overflowed) names the document.
 */
function parseYaml(text: string, source: string): unknown[] {
  let documents: ReturnType<typeof parseAllDocuments>;
  try {
    documents = parseAllDocuments(text);
  } catch (error) {
    if (error instanceof RangeError) throw tooDeep(source, 1);
    throw error;
  }
  const values: unknown[] = [];
  documents.forEach((document, index) => {
    const [error] = document.errors;
    if (error !== undefined && STACK_OVERFLOW.test(error.message)) throw tooDeep(source, index + 1);
    if (error !== undefined) {
      const line = error.linePos?.[0].line;
      throw new MeshctlError(
        `${source}: document ${index + 1}${line === undefined ? '' : `, line ${line}`}: ${firstLine(error.message)}`,
      );
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 100 });
    } catch (thrown) {
      if (thrown instanceof RangeError) throw tooDeep(source, index + 1);
      throw thrown;
    }
    if (nestsDeeperThan(value, MAX_DOCUMENT_DEPTH)) throw tooDeep(source, index + 1);
    if (value !== null && value !== undefined) values.push(value);
  });
  return values;
}

/** Whether JSON.parse fails on this text for a reason other than running out of input. */
function failsBeforeEnd(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    if (/end of JSON input|Unterminated/.test(message)) return false;
    const position = /at position (\d+)/.exec(message)?.[1];
    return position === undefined || Number(position) < text.trimEnd().length;
  }
}

/**
 * The line of a JSON syntax error. V8's message does not always give the position, so the
 * shortest prefix that already fails for a reason other than its end is searched for.
 */
function jsonErrorLine(text: string): number | undefined {
  if (!failsBeforeEnd(text)) return undefined;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (failsBeforeEnd(text.slice(0, middle + 1))) high = middle;
    else low = middle + 1;
  }
  return text.slice(0, low + 1).split('\n').length;
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
    const line = jsonErrorLine(text);
    throw new MeshctlError(
      `${source}: document 1${line === undefined ? '' : `, line ${line}`}: invalid JSON: ${message}`,
    );
  }
}

/** JSON when the first non-blank character opens an object or array, as kubectl decides. */
export function isJson(text: string): boolean {
  return /^\s*[[{]/.test(text);
}

export function injectDocuments(
  text: string,
  source: string,
  inject: InjectPod,
  settings: InjectionSettings,
): InjectDocumentsResult {
  const context: Context = { inject, settings, report: [], passedThrough: 0 };
  if (isJson(text)) {
    const parsed = parseJson(text, source);
    if (nestsDeeperThan(parsed, MAX_DOCUMENT_DEPTH)) throw tooDeep(source, 1);
    const injected = Array.isArray(parsed)
      ? { apiVersion: 'v1', kind: 'List', items: parsed.map((item) => injectObject(item, context)) }
      : injectObject(parsed, context);
    return {
      text: `${JSON.stringify(injected, null, 2)}\n`,
      report: context.report,
      passedThrough: context.passedThrough,
    };
  }
  const documents = parseYaml(text, source).map((document) => injectObject(document, context));
  const printed = renderYamlDocuments(documents, stringify);
  return { text: printed, report: context.report, passedThrough: context.passedThrough };
}
