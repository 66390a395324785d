// The Grafana dashboard shipped in examples/grafana: its structure as Grafana imports it, and
// every query (template variables and panel targets) run against a real Prometheus that scrapes
// simulated sidecars serving the metric contract (docs/metrics.md) at known rates. A misspelt
// metric, label or variable therefore fails here, and so does a query that computes the wrong
// thing: the fixture's rates and latencies give each target a known answer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SIDECAR_DURATION_METRIC, SIDECAR_REQUESTS_METRIC } from '../../src/manifests/constants';
import { STATS_LOST_METRIC } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { startFixtureServer, startPrometheus } from '../support/prometheus';
import type { FixtureServer, FixtureSeries, TestPrometheus } from '../support/prometheus';

const dashboardPath = join(
  __dirname,
  '..',
  '..',
  'examples',
  'grafana',
  'nginx-mesh-dashboard.json',
);

/** The datasource every panel, target and query variable must name: the dashboard's variable. */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

interface DataSourceRef {
  readonly type?: string;
  readonly uid?: string;
}
interface Target {
  readonly refId?: string;
  readonly expr?: unknown;
  readonly datasource?: DataSourceRef;
  readonly legendFormat?: string;
  readonly format?: string;
}
interface GridPos {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}
interface Panel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly description?: string;
  readonly gridPos?: GridPos;
  readonly datasource?: DataSourceRef;
  readonly targets?: readonly Target[];
  readonly transformations?: readonly {
    id: string;
    options?: { renameByName?: Record<string, string> };
  }[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { query?: string };
  readonly datasource?: DataSourceRef;
  readonly includeAll?: boolean;
  readonly multi?: boolean;
  readonly allValue?: string;
}
interface Dashboard {
  readonly title?: string;
  readonly uid?: string;
  readonly schemaVersion?: number;
  readonly templating?: { readonly list?: readonly Variable[] };
  readonly panels?: readonly Panel[];
}

const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as Dashboard;
const panels = dashboard.panels ?? [];
const variables = dashboard.templating?.list ?? [];
const queryVariables = variables.filter((variable) => variable.type === 'query');

/** Grafana's own variables and the values the test gives them (scrapes are 1 s apart). */
const BUILTINS: Readonly<Record<string, string>> = {
  __rate_interval: '5s',
  __interval: '1s',
  __range: '1m',
};

/** `$name`, `${name}` and `${name:format}` references in a query. */
const VARIABLE_REFERENCE = /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g;

function referencedVariables(text: string): string[] {
  return [...text.matchAll(VARIABLE_REFERENCE)].map((match) => match[1] ?? match[2] ?? '');
}

/** Replaces every variable as Grafana would for a regex matcher; unknown names throw. */
function substitute(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(VARIABLE_REFERENCE, (whole, braced?: string, bare?: string) => {
    const value = { ...BUILTINS, ...values }[braced ?? bare ?? ''];
    if (value === undefined) throw new Error(`no value for ${whole} in ${text}`);
    return value;
  });
}

function variableQuery(variable: Variable): string {
  const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
  if (query === undefined) throw new Error(`variable ${variable.name} has no query`);
  return query;
}

function exprOf(panel: Panel, target: Target): string {
  if (typeof target.expr !== 'string' || target.expr.trim() === '') {
    throw new Error(`panel ${panel.id} target ${target.refId} has no expr`);
  }
  return target.expr;
}

/** Every panel target, keyed `<panel id>/<refId>`. */
const allTargets = panels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => ({
    key: `${panel.id}/${target.refId}`,
    panel,
    target,
    expr: exprOf(panel, target),
  })),
);

/** Labels a target's legend or its table's columns show: each series must carry them. */
function namedLabels(panel: Panel, target: Target): string[] {
  const legend = [...(target.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map(
    (match) => match[1] ?? '',
  );
  const renamed = panel.transformations?.find((t) => t.id === 'organize')?.options?.renameByName;
  const columns = Object.keys(renamed ?? {}).filter(
    (column) => column !== 'Time' && !column.startsWith('Value #'),
  );
  return [...legend, ...columns];
}

// ---- the simulated mesh ----

const db = { dst_namespace: 'shop', dst_statefulset: 'db', dst_pod: 'db-0', dst_service: 'db' };
const api = { dst_namespace: 'shop', dst_deployment: 'api', dst_pod: 'api-1', dst_service: 'api' };
const ingress = { src_namespace: 'edge', src_daemonset: 'ingress', src_pod: 'ingress-x' };
/** shop/web-1 (Deployment web) serves 10 req/s (10% 5xx), calls db 5 req/s (20% 5xx) and api. */
const pods: Record<string, FixtureSeries[]> = {
  'web-1': [
    { labels: { direction: 'inbound', code: '2xx', ...ingress }, perSecond: 9 },
    { labels: { direction: 'inbound', code: '5xx', ...ingress }, perSecond: 1 },
    { labels: { direction: 'outbound', code: '2xx', ...db }, perSecond: 4 },
    { labels: { direction: 'outbound', code: '5xx', ...db }, perSecond: 1 },
    { labels: { direction: 'outbound', code: '4xx', ...api }, perSecond: 2 },
  ],
  // A StatefulSet's pod: counted by no deployment panel, but its sidecar's uncounted requests are.
  'db-0': [
    {
      labels: {
        direction: 'inbound',
        code: '2xx',
        src_namespace: 'shop',
        src_deployment: 'web',
        src_pod: 'web-1',
      },
      perSecond: 4,
    },
  ],
};
const droppedPerSecond = { 'web-1': 0.5 };

/** One series a target must return: its labels (a subset) and value. */
interface Expected {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}
const web = { namespace: 'shop', deployment: 'web' };
/** Each target's answer, by `<panel id>/<refId>`; histogram quantiles follow bucketShare. */
const EXPECTED: Readonly<Record<string, readonly Expected[]>> = {
  '1/A': [{ labels: web, value: 10 }],
  '2/A': [{ labels: web, value: 0.9 }],
  '3/A': [{ labels: web, value: 6.25 }],
  '3/B': [{ labels: web, value: 15 }],
  '3/C': [{ labels: web, value: 19.5 }],
  '4/A': [
    { labels: { dst_namespace: 'shop', dst_service: 'db' }, value: 1 },
    { labels: { dst_namespace: 'shop', dst_service: 'api' }, value: 0 },
  ],
  '5/A': [
    { labels: { ...web, dst_namespace: 'shop', dst_service: 'db' }, value: 5 },
    { labels: { ...web, dst_namespace: 'shop', dst_service: 'api' }, value: 2 },
  ],
  '5/B': [
    { labels: { ...web, dst_namespace: 'shop', dst_service: 'db' }, value: 0.8 },
    { labels: { ...web, dst_namespace: 'shop', dst_service: 'api' }, value: 1 },
  ],
  '5/C': [
    { labels: { ...web, dst_namespace: 'shop', dst_service: 'db' }, value: 19.5 },
    { labels: { ...web, dst_namespace: 'shop', dst_service: 'api' }, value: 19.5 },
  ],
  '6/A': [
    { labels: { namespace: 'shop', pod: 'web-1' }, value: 0.5 },
    { labels: { namespace: 'shop', pod: 'db-0' }, value: 0 },
  ],
};

/** Selections of the template variables, formatted as Grafana formats them for a regex. */
const SELECTIONS: readonly (readonly [string, Readonly<Record<string, string>>])[] = [
  ['one value each', { namespace: 'shop', deployment: 'web' }],
  ['several values', { namespace: '(shop|edge)', deployment: '(web|api)' }],
  ['All', { namespace: '.*', deployment: '.*' }],
];

// ---- Prometheus ----

interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}
interface ApiAnswer<T> {
  readonly status: string;
  readonly error?: string;
  readonly data: T;
}

let fixture: FixtureServer;
let prometheus: TestPrometheus;

async function prometheusApi<T>(path: string, params: [string, string][]): Promise<ApiAnswer<T>> {
  const response = await fetch(
    `${prometheus.url}${path}?${new URLSearchParams(params).toString()}`,
  );
  return (await response.json()) as ApiAnswer<T>;
}

async function instant(
  query: string,
): Promise<ApiAnswer<{ resultType: string; result: Sample[] }>> {
  return prometheusApi('/api/v1/query', [['query', query]]);
}

/** The values of a `label_values(selector, label)` variable query, as Grafana asks for them. */
async function labelValues(query: string): Promise<string[]> {
  const match = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new Error(`unsupported variable query ${query}`);
  }
  const answer = await prometheusApi<string[]>(`/api/v1/label/${match[2]}/values`, [
    ['match[]', match[1]],
  ]);
  expect(answer).toMatchObject({ status: 'success' });
  return answer.data;
}

function closeTo(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= Math.max(0.1 * Math.abs(expected), 1e-9);
}

beforeAll(async () => {
  fixture = await startFixtureServer(pods, '127.0.0.1', droppedPerSecond);
  const target = (pod: string, owner: Record<string, string>) => ({
    address: `127.0.0.1:${fixture.port}`,
    metricsPath: `/pods/${pod}/metrics`,
    labels: { namespace: 'shop', pod, ...owner },
  });
  prometheus = await startPrometheus([
    target('web-1', { deployment: 'web' }),
    target('db-0', { statefulset: 'db' }),
  ]);
  // Rates are right once a whole $__rate_interval of scrapes is stored: wait for web-1's 10 req/s.
  const probe = `sum(rate(${SIDECAR_REQUESTS_METRIC}{pod="web-1", direction="inbound"}[${BUILTINS.__rate_interval}]))`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = Number((await instant(probe)).data?.result?.[0]?.value[1]);
    if (closeTo(value, 10)) break;
    if (Date.now() > deadline) throw new Error(`no settled rate for ${probe}: ${value}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
});

afterAll(async () => {
  await prometheus?.stop();
  await fixture?.close();
});

describe('the Grafana dashboard', () => {
  it('is a dashboard Grafana imports: title, uid, schema version and panels', () => {
    expect(dashboard.title).toBe('NGINX Mesh');
    expect(dashboard.uid).toBe('nginx-mesh');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(panels.map((panel) => panel.type)).toEqual([
      'timeseries',
      'timeseries',
      'timeseries',
      'timeseries',
      'table',
      'timeseries',
    ]);
  });

  it('gives every panel a unique id, a title, a description and its own place on the grid', () => {
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const panel of panels) {
      expect(panel.title).toMatch(/\S/);
      expect(panel.description).toMatch(/\S/);
      const grid = panel.gridPos;
      if (grid === undefined) throw new Error(`panel ${panel.id} has no gridPos`);
      expect(grid.x + grid.w).toBeLessThanOrEqual(24);
      for (let x = grid.x; x < grid.x + grid.w; x += 1) {
        for (let y = grid.y; y < grid.y + grid.h; y += 1) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('queries the datasource variable from every panel, target and query variable', () => {
    expect(variables.find((variable) => variable.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    });
    for (const panel of panels) {
      expect(panel.datasource).toEqual(DATASOURCE);
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect(refIds.length).toBeGreaterThan(0);
      expect(new Set(refIds).size).toBe(refIds.length);
      for (const target of panel.targets ?? []) expect(target.datasource).toEqual(DATASOURCE);
    }
    for (const variable of queryVariables) expect(variable.datasource).toEqual(DATASOURCE);
  });

  it('offers namespace and deployment as multi-value variables with All', () => {
    expect(queryVariables.map((variable) => variable.name)).toEqual(['namespace', 'deployment']);
    for (const variable of queryVariables) {
      expect(variable).toMatchObject({ includeAll: true, multi: true, allValue: '.*' });
      expect(variableQuery(variable)).toMatch(/^label_values\(/);
    }
  });

  it('defines every variable an expression uses', () => {
    const defined = new Set([
      ...variables.map((variable) => variable.name),
      ...Object.keys(BUILTINS),
    ]);
    const used = [
      ...allTargets.flatMap(({ expr }) => referencedVariables(expr)),
      ...queryVariables.flatMap((variable) => referencedVariables(variableQuery(variable))),
    ];
    expect(used).toEqual(expect.arrayContaining(['namespace', 'deployment', '__rate_interval']));
    for (const name of used) expect(defined).toContain(name);
  });

  it('reads only the sidecar contract, and every part of it', () => {
    const contract = [
      SIDECAR_REQUESTS_METRIC,
      `${SIDECAR_DURATION_METRIC}_bucket`,
      STATS_LOST_METRIC,
    ];
    const names = allTargets.flatMap(({ expr }) => expr.match(/\bnginx_mesh_\w+/g) ?? []);
    expect([...new Set(names)].sort()).toEqual([...contract].sort());
  });

  it('lists the namespaces and deployments Prometheus holds', async () => {
    const [namespace, deployment] = queryVariables;
    if (namespace === undefined || deployment === undefined) throw new Error('variables missing');
    expect(await labelValues(variableQuery(namespace))).toEqual(['shop']);
    for (const [, values] of SELECTIONS) {
      const query = substitute(variableQuery(deployment), values);
      expect(await labelValues(query)).toEqual(['web']);
    }
  });

  describe.each(SELECTIONS)('with %s selected', (_name, values) => {
    it.each(allTargets)(
      'target $key is accepted and answers with the expected series',
      async ({ key, panel, target, expr }) => {
        const answer = await instant(substitute(expr, values));
        expect({ status: answer.status, error: answer.error }).toEqual({ status: 'success' });
        expect(answer.data.resultType).toBe('vector');
        const result = answer.data.result;
        expect(result.length).toBeGreaterThan(0);
        for (const sample of result) expect(Number.isFinite(Number(sample.value[1]))).toBe(true);
        for (const sample of result) {
          for (const label of namedLabels(panel, target))
            expect(sample.metric[label]).toMatch(/\S/);
        }
        const expected = EXPECTED[key];
        if (expected === undefined) throw new Error(`no expected answer for target ${key}`);
        expect(result).toHaveLength(expected.length);
        for (const want of expected) {
          const got = result.find((sample) =>
            Object.entries(want.labels).every(([name, value]) => sample.metric[name] === value),
          );
          const value = Number(got?.value[1]);
          expect({
            labels: want.labels,
            found: got !== undefined,
            close: closeTo(value, want.value),
          }).toEqual({ labels: want.labels, found: true, close: true });
        }
      },
    );
  });
});
