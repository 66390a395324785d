// `nginx-meshctl inject` end to end in-process: manifests in, injected manifests and a report
// out, byte for byte.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../support/cli';
import { expectGolden } from '../support/golden';

const dataDir = join(__dirname, 'data', 'inject-cli');

function fixture(name: string): string {
  return readFileSync(join(dataDir, name), 'utf8');
}

function withStdin(text: string) {
  return {
    input: {
      readFile: (path: string) =>
        path === 'app.yaml' ? Promise.resolve(text) : Promise.reject(new Error(`open ${path}: no such file or directory`)),
      readStdin: () => Promise.resolve(text),
    },
  };
}

describe('inject', () => {
  it.each([
    ['deployment.input.yaml', ['--sidecar-layout', 'native']],
    ['deployment.input.yaml', ['--sidecar-layout', 'classic']],
    ['mixed.input.yaml', []],
    ['list.input.json', ['--ignore-incoming-ports', '5433,5432']],
    ['pod.input.json', ['--ignore-outgoing-ports', '1433']],
  ])('injects %s %j as its golden output', async (name, flags) => {
    const result = await runCli(['inject', ...flags], withStdin(fixture(name)));
    expect(result.code).toBe(0);
    const suffix = flags.map((flag) => flag.replace(/^-+/, '').replace(/[^a-z0-9]+/gi, '_')).join('-');
    const base = `${name.replace('.input.', '.')}${suffix === '' ? '' : `.${suffix}`}`;
    expectGolden(`inject-cli/${base}.stdout`, result.stdout);
    expectGolden(`inject-cli/${base}.stderr`, result.stderr);
  });

  it('reads a file given with -f and stdin for -f -', async () => {
    const text = fixture('pod.input.json');
    const fromFile = await runCli(['inject', '-f', 'app.yaml'], withStdin(text));
    const fromStdin = await runCli(['inject', '-f', '-'], withStdin(text));
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toBe(fromStdin.stdout);
  });

  it('is idempotent: injecting its own output changes nothing', async () => {
    const once = await runCli(['inject'], withStdin(fixture('mixed.input.yaml')));
    const twice = await runCli(['inject'], withStdin(once.stdout));
    expect(twice.stdout).toBe(once.stdout);
    expect(twice.stderr).toContain('0 injected');
  });

  it('fails on malformed YAML naming the document and line, with nothing on stdout', async () => {
    const result = await runCli(['inject'], withStdin(`${fixture('deployment.input.yaml')}---\nkind: Pod\nspec: {containers: [\n`));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Error: stdin: document 2, line \d+: /);
    expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('rejects an SCTP port, naming the workload, with nothing on stdout', async () => {
    const text = fixture('pod.input.json').replace('"containerPort":8080', '"containerPort":8080,"protocol":"SCTP"');
    const result = await runCli(['inject'], withStdin(text));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('creating injection config for "solo": unsupported protocol SCTP');
  });

  it('rejects an invalid ignore port with NSM wording', async () => {
    const result = await runCli(['inject', '--ignore-incoming-ports', '70000'], withStdin(fixture('pod.input.json')));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "Error: invalid ignore ports: incoming ignore ports are not valid: '70000' is not a valid port\n",
    );
  });

  it('says so when the input is empty', async () => {
    const result = await runCli(['inject'], withStdin('\n'));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('Error: stdin: no Kubernetes resources to inject\n');
  });

  it('names an unreadable file', async () => {
    const result = await runCli(['inject', '-f', 'missing.yaml'], withStdin(''));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('Error: cannot read missing.yaml: open missing.yaml: no such file or directory\n');
  });
});
