// Manifest handling of `inject`, with a stand-in for the pod transformation so that these tests
// speak only of documents: formats, kinds, order, lists and errors.
import { parse } from 'yaml';
import { injectDocuments, isJson } from '../../src/commands/inject/inject-documents';
import type { InjectPod } from '../../src/commands/inject/inject-documents';
import type { InjectionSettings } from '../../src/manifests/inject/types';

const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: 's',
  initImage: 'i',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

const calls: { owner: string; name: string }[] = [];

/** Marks the template; skips pods labelled skip=yes, leaves marked ones unchanged. */
const markPod: InjectPod = (template, owner, _settings, name) => {
  calls.push({ owner: `${owner.kind}/${owner.name}`, name });
  const labels = (template.metadata?.labels ?? {}) as Record<string, string>;
  if (labels.skip === 'yes') return { status: 'skipped', reason: 'asked to' };
  if (labels.marked === 'yes') return { status: 'unchanged', reason: 'already injected' };
  return {
    status: 'injected',
    template: {
      ...template,
      metadata: { ...template.metadata, labels: { ...labels, marked: 'yes' } },
    },
    warnings: labels.warn === 'yes' ? ['a warning'] : [],
  };
};

beforeEach(() => {
  calls.length = 0;
});

const deployment = (name: string): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  template:
    metadata:
      labels:
        app: ${name}
    spec:
      containers:
        - name: app
          image: app
`;

describe('injectDocuments', () => {
  it('injects every workload kind at its pod template and reports each', () => {
    const kinds: [string, string][] = [
      ['Deployment', 'spec:\n  template:\n    metadata: {}\n    spec: {containers: []}\n'],
      ['StatefulSet', 'spec:\n  template:\n    metadata: {}\n    spec: {containers: []}\n'],
      ['DaemonSet', 'spec:\n  template:\n    metadata: {}\n    spec: {containers: []}\n'],
      ['ReplicaSet', 'spec:\n  template:\n    metadata: {}\n    spec: {containers: []}\n'],
      [
        'ReplicationController',
        'spec:\n  template:\n    metadata: {}\n    spec: {containers: []}\n',
      ],
      ['Job', 'spec:\n  template:\n    metadata: {}\n    spec: {containers: []}\n'],
      [
        'CronJob',
        'spec:\n  jobTemplate:\n    spec:\n      template:\n        metadata: {}\n        spec: {containers: []}\n',
      ],
      ['Pod', 'spec: {containers: []}\n'],
    ];
    const text = kinds
      .map(([kind, body]) => `---\nkind: ${kind}\nmetadata: {name: w}\n${body}`)
      .join('');
    const result = injectDocuments(text, 'stdin', markPod, settings);
    expect(calls.map((call) => call.owner)).toEqual(
      kinds.map(([kind]) => `${kind.toLowerCase()}/w`),
    );
    expect(result.report.every((entry) => entry.outcome === 'injected')).toBe(true);
    const documents = result.text
      .split(/^---\n/m)
      .filter((part) => part !== '')
      .map((part) => parse(part) as Record<string, unknown>);
    expect(JSON.stringify(documents[6])).toContain('"marked":"yes"');
    expect((documents[7]?.metadata as Record<string, unknown>).labels).toEqual({ marked: 'yes' });
  });

  it('passes other documents through unchanged and in order', () => {
    const text = `kind: Service\nmetadata: {name: a}\n---\n${deployment('b')}---\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: "1"}\n`;
    const result = injectDocuments(text, 'f.yaml', markPod, settings);
    expect(result.passedThrough).toBe(2);
    const names = result.text
      .split('---\n')
      .filter(Boolean)
      .map((part) => (parse(part) as { metadata: { name: string } }).metadata.name);
    expect(names).toEqual(['a', 'b', 'c']);
    expect(result.text.startsWith('---\nkind: Service\n')).toBe(true);
  });

  it('answers JSON with JSON and keeps a List a List', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [parse(deployment('x')) as unknown, { kind: 'Service', metadata: { name: 's' } }],
    };
    const result = injectDocuments(JSON.stringify(list), 'stdin', markPod, settings);
    expect(isJson(result.text)).toBe(true);
    const output = JSON.parse(result.text) as { kind: string; items: unknown[] };
    expect(output.kind).toBe('List');
    expect(output.items).toHaveLength(2);
    expect(result.text.endsWith('}\n')).toBe(true);
    expect(result.text).toContain('\n  "items": [\n');
  });

  it('reports skipped and already-injected workloads with their reasons and keeps them as they were', () => {
    const text = `${deployment('a').replace('app: a', 'app: a\n        skip: "yes"')}---\n${deployment('b').replace('app: b', 'app: b\n        marked: "yes"')}`;
    const result = injectDocuments(text, 'stdin', markPod, settings);
    expect(result.report).toEqual([
      { object: 'deployment/a', outcome: 'skipped', reason: 'asked to', warnings: [] },
      { object: 'deployment/b', outcome: 'unchanged', reason: 'already injected', warnings: [] },
    ]);
    const [first] = result.text.split('---\n').filter(Boolean);
    expect(first).not.toContain('marked');
  });

  it('names the namespace of a workload in the report', () => {
    const text = deployment('a').replace('name: a', 'name: a\n  namespace: shop');
    expect(injectDocuments(text, 'stdin', markPod, settings).report[0]?.object).toBe(
      'deployment/a (namespace shop)',
    );
  });

  it('names the document and line of a YAML syntax error', () => {
    const text = `${deployment('ok')}---\nkind: Deployment\nmetadata: [\n`;
    expect(() => injectDocuments(text, 'app.yaml', markPod, settings)).toThrow(
      /^app\.yaml: document 2, line \d+: /,
    );
  });

  it('names the line of a JSON syntax error', () => {
    expect(() =>
      injectDocuments('{\n  "kind": "Pod",\n  "metadata": }\n', 'app.json', markPod, settings),
    ).toThrow(/^app\.json: document 1, line 3: invalid JSON: /);
  });

  it('rejects a workload without a pod template, naming it', () => {
    expect(() =>
      injectDocuments(
        'kind: Deployment\nmetadata: {name: broken}\nspec: {}\n',
        'stdin',
        markPod,
        settings,
      ),
    ).toThrow('deployment/broken: no pod template at spec.template');
  });

  it('skips empty documents', () => {
    const result = injectDocuments(`---\n---\n${deployment('a')}---\n`, 'stdin', markPod, settings);
    expect(result.text.match(/^---$/gm)).toHaveLength(1);
  });
});
