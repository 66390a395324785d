// Where inject reads its manifests from: -f names a file, or an http(s) URL that is fetched;
// "-" or no -f reads stdin.
import { MAX_MANIFEST_BYTES } from '../../src/manifests/constants';
import { runCli } from '../support/cli';

const POD =
  '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}]}}';

function recordingInput(): { calls: string[]; input: Parameters<typeof runCli>[1] } {
  const calls: string[] = [];
  return {
    calls,
    input: {
      input: {
        readFile: (path) => (calls.push(`file ${path}`), Promise.resolve(POD)),
        readStdin: () => (calls.push('stdin'), Promise.resolve(POD)),
        readUrl: (url, maxBytes) => (calls.push(`url ${url} ${maxBytes}`), Promise.resolve(POD)),
      },
    },
  };
}

describe('inject -f', () => {
  it.each([
    [
      ['-f', 'https://example.test/app.yaml'],
      `url https://example.test/app.yaml ${MAX_MANIFEST_BYTES}`,
    ],
    [
      ['-f', 'HTTP://example.test/app.yaml'],
      `url HTTP://example.test/app.yaml ${MAX_MANIFEST_BYTES}`,
    ],
    [['-f', 'http-app.yaml'], 'file http-app.yaml'],
    [['-f', './https/app.yaml'], 'file ./https/app.yaml'],
    [['-f', '-'], 'stdin'],
    [[], 'stdin'],
  ])('%j reads %s', async (flags, read) => {
    const { calls, input } = recordingInput();
    const result = await runCli(['inject', ...flags], input);
    expect(result.code).toBe(0);
    expect(calls).toEqual([read]);
  });
});
