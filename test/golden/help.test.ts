import { COMPLETION_SHELLS } from '../../src/render/completion-scripts';
import { runCli } from '../support/cli';
import { expectGolden } from '../support/golden';

describe('help text', () => {
  it.each([
    ['root', []],
    ['version', ['version']],
    ['inject', ['inject']],
    ['deploy', ['deploy']],
    ['remove', ['remove']],
    ['upgrade', ['upgrade']],
    ['help', ['help']],
    ['completion', ['completion']],
    ['completion-bash', ['completion', 'bash']],
    ['top', ['top']],
    ['supportpkg', ['supportpkg']],
  ])('of %s matches its golden file', async (name, path) => {
    const result = await runCli(['help', ...path]);
    expect(result.code).toBe(0);
    expectGolden(`help/${name}.txt`, result.stdout);
  });
});

describe('completion scripts', () => {
  it.each(COMPLETION_SHELLS)('for %s match their golden files', async (shell) => {
    const result = await runCli(['completion', shell]);
    expect(result.code).toBe(0);
    expectGolden(`completion/${shell}.txt`, result.stdout);
  });
});
