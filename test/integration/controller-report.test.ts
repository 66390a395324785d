// The controller's version port as any pod reaches it, over plain HTTP at its address: /version
// answers everyone, while /sidecars, which names every tenant's pods and their errors, answers
// only a request carrying the token of the Secret that RBAC guards.
import { request } from 'node:http';
import type { VersionServer } from '../../src/runtime/controller/version-server';
import { startVersionServer } from '../../src/runtime/controller/version-server';

const REPORT = {
  leader: true,
  generation: 7,
  sidecars: [{ pod: 'tenant-a/web-1', generation: 7, error: 'secret detail' }],
  behind: [],
};

let server: VersionServer;
let token: string | undefined;

beforeAll(async () => {
  server = await startVersionServer({
    host: '127.0.0.1',
    port: 0,
    versions: () => ({ 'nginx-mesh-controller': ['1.2.3'] }),
    sidecars: () => REPORT,
    reportToken: () => token,
  });
});

afterAll(() => server.close());

function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, path, headers, agent: false, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('GET /sidecars on the version port', () => {
  beforeEach(() => {
    token = 'the-token-of-the-secret';
  });

  it('refuses a plain client without the token, 401 naming the header and Secret', async () => {
    const answer = await get('/sidecars');
    expect(answer).toEqual({
      status: 401,
      body: 'GET /sidecars needs header x-nginx-mesh-report-token with the token of Secret nginx-mesh-controller-report\n',
    });
    expect(answer.body).not.toContain('tenant-a');
  });

  it.each([
    ['a wrong token', { 'x-nginx-mesh-report-token': 'guess' }],
    ['the token as a prefix', { 'x-nginx-mesh-report-token': 'the-token-of-the-secret-and-more' }],
    ['the token in Authorization', { authorization: 'Bearer the-token-of-the-secret' }],
  ])('refuses %s', async (_name, headers) => {
    expect((await get('/sidecars', headers)).status).toBe(401);
  });

  it('answers 503 to everyone while the token is not loaded yet', async () => {
    token = undefined;
    const answer = await get('/sidecars', { 'x-nginx-mesh-report-token': '' });
    expect(answer.status).toBe(503);
    expect(answer.body).not.toContain('tenant-a');
  });

  it('answers the report to a request carrying the token', async () => {
    const answer = await get('/sidecars', {
      'x-nginx-mesh-report-token': 'the-token-of-the-secret',
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual(REPORT);
  });
});

it('still answers /version to everyone', async () => {
  expect(await get('/version')).toEqual({
    status: 200,
    body: '{"nginx-mesh-controller":["1.2.3"]}',
  });
});
