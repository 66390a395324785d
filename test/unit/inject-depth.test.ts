// `inject` refuses input nested too deep (or too large) to transform safely, naming the source
// and the document, instead of overflowing the stack; and handles the deepest input it accepts.
import { MAX_DOCUMENT_DEPTH, MAX_MANIFEST_BYTES } from '../../src/manifests/constants';
import { nestsDeeperThan } from '../../src/manifests/document-depth';
import { runCli } from '../support/cli';

/** A flow sequence (also JSON) nested `depth` levels: [[[…]]]. */
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

const configMap = (name: string, extra: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\nextra: ${extra}\n`;

const pod = (extra: string): string =>
  `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}],"extra":${extra}}}`;

function inject(text: string, file?: string): ReturnType<typeof runCli> {
  return runCli(['inject', ...(file === undefined ? [] : ['-f', file])], {
    input: {
      readFile: () => Promise.resolve(text),
      readStdin: () => Promise.resolve(text),
    },
  });
}

describe('nestsDeeperThan', () => {
  it('counts a scalar as no nesting', () => {
    expect(nestsDeeperThan('text', 0)).toBe(false);
  });

  it.each([
    [1, 0, true],
    [1, 1, false],
    [3, 3, false],
    [4, 3, true],
  ])('an array nested %i deep against a limit of %i: %s', (depth, max, deeper) => {
    expect(nestsDeeperThan(JSON.parse(nested(depth)) as unknown, max)).toBe(deeper);
  });

  it('counts objects and arrays alike, on the deepest branch', () => {
    expect(nestsDeeperThan({ a: 1, b: [{ c: {} }], d: 'x' }, 4)).toBe(false);
    expect(nestsDeeperThan({ a: 1, b: [{ c: { e: [] } }], d: 'x' }, 4)).toBe(true);
  });

  it('stops on a cyclic value', () => {
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(nestsDeeperThan(cycle, 50)).toBe(true);
  });

  it('walks a million levels without recursion', () => {
    let value: unknown = [];
    for (let i = 0; i < 1_000_000; i += 1) value = [value];
    expect(nestsDeeperThan(value, MAX_DOCUMENT_DEPTH)).toBe(true);
  });
});

describe('nginx-meshctl inject on deeply nested input', () => {
  it('refuses a YAML document nested 100000 deep, naming the file and document, exit 1', async () => {
    const text = `${configMap('a', '1')}---\n${configMap('b', nested(100_000))}`;
    const result = await inject(text, 'deep.yaml');
    expect(result.stderr).toBe(
      `Error: deep.yaml: document 2: nested deeper than ${MAX_DOCUMENT_DEPTH} levels\n`,
    );
    expect(result.stdout).toBe('');
    expect(result.code).toBe(1);
  });

  it('refuses a YAML document one level over the limit, which parses fine', async () => {
    const result = await inject(configMap('a', nested(MAX_DOCUMENT_DEPTH)), 'over.yaml');
    expect(result.stderr).toBe(
      `Error: over.yaml: document 1: nested deeper than ${MAX_DOCUMENT_DEPTH} levels\n`,
    );
    expect(result.code).toBe(1);
  });

  it('refuses JSON from stdin nested 100000 deep inside a pod, exit 1', async () => {
    const result = await inject(pod(nested(100_000)));
    expect(result.stderr).toBe(
      `Error: stdin: document 1: nested deeper than ${MAX_DOCUMENT_DEPTH} levels\n`,
    );
    expect(result.stdout).toBe('');
    expect(result.code).toBe(1);
  });

  it('injects a pod whose deepest branch is exactly at the limit, in YAML and JSON', async () => {
    // The pod's own nesting (spec.extra) adds two levels to the sequence's.
    const atLimit = nested(MAX_DOCUMENT_DEPTH - 2);
    const json = await inject(pod(atLimit));
    expect(json.stderr).toContain('injected pod/p');
    expect(json.code).toBe(0);
    const yaml = await inject(
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: [{name: a, image: a}]\n  extra: ${atLimit}\n`,
    );
    expect(yaml.stderr).toContain('injected pod/p');
    expect(yaml.code).toBe(0);
  });

  it('refuses input over the size limit before parsing it, naming the source', async () => {
    const text = `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n${configMap('a', '1')}`;
    const result = await inject(text, 'big.yaml');
    expect(result.stderr).toBe(
      `Error: big.yaml: ${Buffer.byteLength(text)} bytes is over the limit of ${MAX_MANIFEST_BYTES} bytes\n`,
    );
    expect(result.code).toBe(1);
  });
});
