// top against a hand-written API: what it asks for, its errors and its machine-readable output.
import { runCli } from '../support/cli';
import { kubeAnswering, okJson as ok } from '../support/fake-kube';
import { createBufferedIo, createManualSignals, readOnlyKube } from '../support/fakes';
import { trafficList } from '../support/traffic-lists';

const base = '/apis/metrics.smi-spec.io/v1alpha1';

const pods = trafficList('pods', 'list', { namespace: 'default' }, [
  [{ namespace: 'default', pod: 'web-1', direction: 'inbound' }, 3, 2, 1, 9, 1],
]);

describe('top', () => {
  it('reads the resources of namespace "default" unless -n is given, by any alias', async () => {
    const { kube, paths } = kubeAnswering({ [`${base}/namespaces/default/pods`]: ok(pods) });
    const result = await runCli(['top', 'po'], { kube });
    expect(paths).toEqual([`${base}/namespaces/default/pods`]);
    expect(result).toEqual({
      code: 0,
      stdout:
        'Pod    Incoming Success  Outgoing Success  NumRequests\nweb-1  90.00%            -                 10\n\n',
      stderr: '',
    });
  });

  it('asks for namespaces without a namespace, and for edges of a named one', async () => {
    const { kube, paths } = kubeAnswering({});
    await runCli(['top', 'ns'], { kube });
    await runCli(['top', 'namespace/shop', '-n', 'ignored'], { kube });
    await runCli(['top', 'ss/db', '-n', 'shop'], { kube });
    expect(paths).toEqual([
      `${base}/namespaces`,
      `${base}/namespaces/shop/edges`,
      `${base}/namespaces/shop/statefulsets/db/edges`,
    ]);
  });

  it('asks for the three workload kinds without an argument', async () => {
    const { kube, paths } = kubeAnswering({});
    const result = await runCli(['top', '-n', 'shop'], { kube });
    expect(paths).toEqual([
      `${base}/namespaces/shop/deployments`,
      `${base}/namespaces/shop/statefulsets`,
      `${base}/namespaces/shop/daemonsets`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: unable to get traffic metrics: not found\nIs the metrics API available? Check APIService v1alpha1.metrics.smi-spec.io and the nginx-mesh-metrics pods.\n',
    );
  });

  it('says there is no traffic yet instead of printing an empty table', async () => {
    const empty = trafficList('pods', 'list', { namespace: 'default' }, []);
    const { kube } = kubeAnswering({ [`${base}/namespaces/default/pods`]: ok(empty) });
    const result = await runCli(['top', 'pods'], { kube });
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'Error: no traffic yet for pods in namespace "default": no metrics populated - make sure traffic is flowing\n',
    });
  });

  it('names the unknown resource type and the supported aliases', async () => {
    const result = await runCli(['top', 'jobs/x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: failed to build resource from name: jobs\nCannot build traffic statistics.\nYou must provide one of the supported resource type names or aliases: namespaces, namespace, ns, pods, pod, po, deployments, deployment, deploy, statefulsets, statefulset, ss, daemonsets, daemonset, ds\n',
    );
  });

  it('prints the API objects with -o json and -o yaml', async () => {
    const { kube } = kubeAnswering({ [`${base}/namespaces/default/pods`]: ok(pods) });
    const json = await runCli(['top', 'pods', '-o', 'json'], { kube });
    expect(JSON.parse(json.stdout)).toEqual(pods);
    const yaml = await runCli(['top', 'pods', '-o', 'yaml'], { kube });
    expect(yaml.stdout).toMatch(
      /^kind: TrafficMetricsList\napiVersion: metrics.smi-spec.io\/v1alpha1\n/,
    );
  });

  it('rejects a second argument and an unknown output format as usage errors', async () => {
    expect((await runCli(['top', 'pods', 'deployments'])).code).toBe(2);
    const bad = await runCli(['top', '-o', 'wide']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('must be one of: table, json, yaml');
  });

  describe('--watch', () => {
    /**
     * Answers the pods list from the given sequence (repeating its last); the request number
     * `frames` + 1 gets a signal first, so exactly `frames` refreshes are printed.
     */
    function watched(answers: readonly unknown[], frames: number) {
      const signals = createManualSignals();
      let asked = 0;
      const kube = readOnlyKube(() => {
        // A watch that ignored the signal would spin here; hang instead, so Jest's timeout ends it.
        if (asked > frames) return new Promise(() => undefined);
        const answer = answers[Math.min(asked, answers.length - 1)];
        asked += 1;
        // At once, not on a later tick: the test clock's sleeps never yield to the event loop.
        if (asked > frames) signals.send('SIGINT');
        return Promise.resolve(answer === undefined ? { status: 503, body: 'down' } : ok(answer));
      });
      return { kube, signals, asked: () => asked };
    }
    const empty = trafficList('pods', 'list', { namespace: 'default' }, []);
    const header = 'Every 2s: nginx-meshctl top pods -n default    2026-01-02T03:04:05.000Z\n\n';
    const table =
      'Pod    Incoming Success  Outgoing Success  NumRequests\nweb-1  90.00%            -                 10\n\n';

    it('refreshes until a signal, showing "no traffic yet" and failures in place, then exits 0', async () => {
      const { kube, signals, asked } = watched([empty, undefined, pods], 3);
      const result = await runCli(['top', 'pods', '-w'], { kube, signals });
      expect(result.code).toBe(0);
      expect(asked()).toBe(4);
      expect(result.stdout).toBe(
        [
          `${header}no traffic yet for pods in namespace "default": no metrics populated - make sure traffic is flowing\n`,
          `${header}unable to get traffic metrics: the API server answered 503\nIs the metrics API available? Check APIService v1alpha1.metrics.smi-spec.io and the nginx-mesh-metrics pods.\n`,
          `${header}${table}`,
        ].join(''),
      );
      expect(signals.listenerCount()).toBe(0);
    });

    it('redraws in place on a terminal, every --interval', async () => {
      const { kube, signals } = watched([pods], 2);
      const io = createBufferedIo({ tty: true });
      const result = await runCli(['top', 'po', '--watch', '--interval', '5s'], {
        kube,
        signals,
        io,
      });
      expect(result.code).toBe(0);
      const frames = result.stdout.split('\x1b[H\x1b[2J');
      expect(frames).toEqual([
        '',
        ...Array.from(
          { length: 2 },
          () => `${header.replace('2s', '5s').replace('pods', 'po')}${table}`,
        ),
      ]);
    });

    it('refuses -o json|yaml and an interval under 500ms as usage errors', async () => {
      const json = await runCli(['top', 'pods', '-w', '-o', 'json']);
      expect(json).toMatchObject({ code: 2 });
      expect(json.stderr).toContain('Error: --watch prints tables only: leave out -o');
      const fast = await runCli(['top', 'pods', '-w', '--interval', '100ms']);
      expect(fast).toMatchObject({ code: 2 });
      expect(fast.stderr).toContain('invalid --interval "100ms": must be at least 500ms');
    });
  });
});
