// inject throughput: a generated file of 1,000 documents (Deployments, Services, ConfigMaps,
// Jobs), injected in-process, against a plain YAML parse-and-print of the same file with the
// same library in the same run. Target: inject at least 0.5x the plain rate.
import { parseAllDocuments, stringify } from 'yaml';
import { injectDocuments } from '../src/commands/inject/inject-documents';
import { defaultInjectionSettings } from '../src/commands/inject/run-inject';
import { injectPodTemplate } from '../src/manifests/inject/inject-pod';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

const DOCUMENTS = 1_000;
const ROUNDS = 7;
const TARGET_RATIO: Target = { how: '>=', limit: 0.5 };

function documentText(index: number): string {
  switch (index % 4) {
    case 0:
      return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${index}
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: app-${index}}
  template:
    metadata:
      labels: {app: app-${index}}
      annotations:
        config.nsm.nginx.com/ignore-outgoing-ports: "5432"
    spec:
      containers:
        - name: app
          image: example/app:${index}
          ports: [{name: http, containerPort: 8080}, {containerPort: 9090}]
          env: [{name: MODE, value: fast}]
          readinessProbe: {httpGet: {path: /ready, port: http}}
          livenessProbe: {httpGet: {path: /live, port: 9090, scheme: HTTPS}}
`;
    case 1:
      return `apiVersion: v1
kind: Service
metadata: {name: app-${index}, namespace: shop}
spec:
  selector: {app: app-${index}}
  ports: [{port: 80, targetPort: 8080}]
`;
    case 2:
      return `apiVersion: v1
kind: ConfigMap
metadata: {name: settings-${index}, namespace: shop}
data: {a: "1", b: "two", c: "three"}
`;
    default:
      return `apiVersion: batch/v1
kind: Job
metadata: {name: job-${index}, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers: [{name: migrate, image: example/migrate:1}]
      containers: [{name: job, image: example/job:1, command: [sh, -c, "exit 0"]}]
`;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const text = Array.from({ length: DOCUMENTS }, (_, index) => documentText(index)).join('---\n');
const settings = defaultInjectionSettings({
  file: undefined,
  meshNamespace: 'nginx-mesh',
  ignoreIncomingPorts: [],
  ignoreOutgoingPorts: [],
  layout: 'native',
  imageTag: '0.0.0',
});

function plain(): string {
  return parseAllDocuments(text)
    .map((document) => `---\n${stringify(document.toJS(), { lineWidth: 0 })}`)
    .join('');
}

function inject(): string {
  const result = injectDocuments(text, 'bench', injectPodTemplate, settings);
  if (result.report.length !== DOCUMENTS / 2)
    throw new Error(`expected ${DOCUMENTS / 2} workloads`);
  return result.text;
}

function time(run: () => string): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

// Warm up both paths, then interleave rounds so machine noise hits both alike.
plain();
inject();
const plainMs: number[] = [];
const injectMs: number[] = [];
for (let round = 0; round < ROUNDS; round += 1) {
  plainMs.push(time(plain));
  injectMs.push(time(inject));
}
const plainRate = (DOCUMENTS / median(plainMs)) * 1000;
const injectRate = (DOCUMENTS / median(injectMs)) * 1000;
const ratio = injectRate / plainRate;
console.log(
  `inject: ${DOCUMENTS} documents (${DOCUMENTS / 2} workloads), median of ${ROUNDS} rounds, Node ${process.versions.node}`,
);
console.log(
  `  plain YAML parse and print  ${median(plainMs).toFixed(1)} ms  ${plainRate.toFixed(0)} docs/s`,
);
console.log(
  `  inject                      ${median(injectMs).toFixed(1)} ms  ${injectRate.toFixed(0)} docs/s  ${ratio.toFixed(2)}x`,
);
console.log(`inject_docs_per_second ${injectRate.toFixed(0)} docs/s`);
console.log(`inject_plain_docs_per_second ${plainRate.toFixed(0)} docs/s`);
console.log(`inject_ratio_to_plain ${ratio.toFixed(2)} x`);
console.log(targetLine('inject_ratio_to_plain', ratio, TARGET_RATIO, 2));
