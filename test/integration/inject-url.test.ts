// `inject -f <url>` against a real HTTP server on 127.0.0.1: the manifest it serves is injected,
// a non-2xx answer is an error in NGINX Service Mesh's words, and a server that does not answer
// or answers too much is given up on.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fetchText } from '../../src/runtime/fetch-text';
import { runCli } from '../support/cli';

const deployment = readFileSync(
  join(__dirname, '..', 'golden', 'data', 'inject-cli', 'deployment.input.yaml'),
  'utf8',
);

let server: Server;
let base: string;
const held: Array<() => void> = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    if (request.url === '/app.yaml') {
      response.writeHead(200, { 'content-type': 'application/yaml' });
      response.end(deployment);
    } else if (request.url === '/silent') {
      // Never answers until the test ends.
      held.push(() => response.end());
    } else if (request.url === '/large') {
      response.writeHead(200);
      response.end('x'.repeat(4096));
    } else {
      response.writeHead(404);
      response.end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const release of held) release();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const viaHttp = {
  input: { readUrl: (url: string, maxBytes: number) => fetchText(url, { maxBytes }) },
};

describe('inject -f <url>', () => {
  it('injects the Deployment the URL serves, as it injects the same file', async () => {
    const fromUrl = await runCli(['inject', '-f', `${base}/app.yaml`], viaHttp);
    const fromFile = await runCli(['inject', '-f', 'app.yaml'], {
      input: { readFile: () => Promise.resolve(deployment) },
    });
    expect(fromUrl.code).toBe(0);
    expect(fromUrl.stdout).toContain('name: nginx-mesh-sidecar');
    expect(fromUrl.stdout).toBe(fromFile.stdout);
    expect(fromUrl.stderr).toContain('1 injected');
  });

  it("fails on a 404 in NGINX Service Mesh's words, with nothing on stdout", async () => {
    const result = await runCli(['inject', '-f', `${base}/missing.yaml`], viaHttp);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `Error: http request failed: GET ${base}/missing.yaml failed: 404 Not Found\n`,
    );
  });
});

describe('fetchText', () => {
  it('gives up on a server that does not answer within the timeout', async () => {
    await expect(fetchText(`${base}/silent`, { timeoutMs: 200, maxBytes: 1024 })).rejects.toThrow(
      `http request failed: GET ${base}/silent: no answer within the timeout`,
    );
  });

  it('refuses a body over the limit rather than reading it whole', async () => {
    await expect(fetchText(`${base}/large`, { maxBytes: 1024 })).rejects.toThrow(
      `http request failed: GET ${base}/large: the body is over the limit of 1024 bytes`,
    );
  });

  it('names the URL when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/app.yaml`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(fetchText(url, { maxBytes: 1024 })).rejects.toThrow(
      new RegExp(`^http request failed: GET ${url.replace(/[.]/g, '\\.')}: connect ECONNREFUSED`),
    );
  });
});
