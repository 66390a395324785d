// The registrar's certificates checked by OpenSSL: CAs of every key type, self-signed or below
// an upstream CA, and SVIDs for requests made by the SVID client, verified as TLS server and
// client certificates against the trust bundle.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { MTLS_CA_KEY_TYPES } from '../../src/manifests/mesh-config/deploy-flags';
import type { MtlsCaKeyType } from '../../src/manifests/mesh-config/deploy-flags';
import type { Authority, UpstreamCa } from '../../src/runtime/registrar/authority';
import {
  createAuthority,
  issuedBy,
  loadAuthority,
  loadUpstreamCa,
} from '../../src/runtime/registrar/authority';
import { issueTestSvid } from '../support/svid';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'registrar-pki-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function openssl(args: string[]): Promise<string> {
  const result = await execa('openssl', args, { cwd: dir, reject: false });
  if (result.exitCode !== 0)
    throw new Error(`openssl ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

/** A self-signed CA made by OpenSSL: its key and certificate files in a new directory. */
async function opensslCa(
  name: string,
  subject: string,
  newkey: readonly string[],
  files: { key: string; cert: string },
): Promise<string> {
  const caDir = join(dir, name);
  mkdirSync(caDir, { recursive: true });
  await openssl([
    'req',
    '-x509',
    ...newkey,
    '-nodes',
    '-subj',
    subject,
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    join(caDir, files.key),
    '-out',
    join(caDir, files.cert),
  ]);
  return caDir;
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const UPSTREAM = { key: 'upstreamCA.key', cert: 'upstreamCA.crt' };

async function authorityOf(keyType: MtlsCaKeyType, upstream?: UpstreamCa): Promise<Authority> {
  return createAuthority(
    { keyType, trustDomain: 'example.org', ttlMs: 720 * 3_600_000, upstream },
    new Date(),
  );
}

/** An SVID for a request the SVID client made; returns the chain (leaf first). */
async function svidFrom(
  authority: Authority,
  clientKey: MtlsCaKeyType = 'ec-p256',
): Promise<string> {
  const svid = await issueTestSvid(authority, 'app', 'web', clientKey);
  write('client.csr', svid.csrPem);
  await openssl(['req', '-in', 'client.csr', '-noout', '-verify']);
  return svid.chain;
}

/** Verifies the leaf of chain (with the chain's other certificates as untrusted) against bundle. */
async function verify(chain: string, bundle: string, purpose: string): Promise<string> {
  const blocks =
    chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
  write('leaf.crt', blocks[0] ?? '');
  write('untrusted.crt', blocks.slice(1).join(''));
  write('bundle.crt', bundle);
  return openssl([
    'verify',
    '-x509_strict',
    '-purpose',
    purpose,
    '-CAfile',
    'bundle.crt',
    '-untrusted',
    'untrusted.crt',
    'leaf.crt',
  ]);
}

describe.each(MTLS_CA_KEY_TYPES)('a self-signed %s CA', (keyType) => {
  let authority: Authority;
  beforeAll(async () => (authority = await authorityOf(keyType)));

  it('signs SVIDs that OpenSSL accepts for TLS servers and clients', async () => {
    const chain = await svidFrom(authority);
    await expect(verify(chain, authority.stored.certificate, 'sslserver')).resolves.toContain(
      'leaf.crt: OK',
    );
    await expect(verify(chain, authority.stored.certificate, 'sslclient')).resolves.toContain(
      'leaf.crt: OK',
    );
  });

  it('is a CA for leaves only, with the trust domain as its SPIFFE ID', async () => {
    write('ca.crt', authority.stored.certificate);
    const text = await openssl(['x509', '-in', 'ca.crt', '-noout', '-text']);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toContain('URI:spiffe://example.org');
  });
});

describe('an SVID as OpenSSL reads it', () => {
  it('carries the SPIFFE ID, the DNS name and critical leaf constraints', async () => {
    const chain = await svidFrom(await authorityOf('ec-p256'), 'rsa-2048');
    write('leaf.crt', chain);
    const text = await openssl(['x509', '-in', 'leaf.crt', '-noout', '-text']);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(
      /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    expect(text).toMatch(
      /Subject Alternative Name:\s+DNS:web\.app\.svc, URI:spiffe:\/\/example\.org\/ns\/app\/sa\/web/,
    );
  });
});

describe('an intermediate CA below an upstream CA', () => {
  it('chains to the upstream CA itself when no bundle is given', async () => {
    const upstreamDir = await opensslCa('upstream-root', '/CN=upstream root', P256, UPSTREAM);
    const upstream = await loadUpstreamCa(upstreamDir);
    const authority = await authorityOf('ec-p384', upstream);
    expect(authority.fields.notAfter.getTime()).toBeLessThanOrEqual(
      upstream.fields.notAfter.getTime(),
    );
    await expect(
      verify(await svidFrom(authority), upstream.bundlePem, 'sslserver'),
    ).resolves.toContain('OK');
  });

  it('sends the upstream CA in the chain when the bundle holds the root above it', async () => {
    const upstreamDir = await opensslCa(
      'upstream-intermediate',
      '/CN=corporate root',
      ['-newkey', 'rsa:2048'],
      {
        key: 'root.key',
        cert: 'upstreamBundle.crt',
      },
    );
    const key = (name: string): string => join(upstreamDir, name);
    await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=mesh upstream',
      '-keyout',
      key('upstreamCA.key'),
      '-out',
      key('upstream.csr'),
    ]);
    write(
      'ext.cnf',
      'basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
    );
    await openssl([
      'x509',
      '-req',
      '-in',
      key('upstream.csr'),
      '-CA',
      key('upstreamBundle.crt'),
      '-CAkey',
      key('root.key'),
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      'ext.cnf',
      '-out',
      key('upstreamCA.crt'),
    ]);
    rmSync(key('root.key'));
    const upstream = await loadUpstreamCa(upstreamDir);
    const authority = await authorityOf('ec-p256', upstream);
    const chain = await svidFrom(authority);
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    await expect(verify(chain, upstream.bundlePem, 'sslclient')).resolves.toContain('OK');
  });

  it('refuses an upstream key that does not belong to its certificate', async () => {
    const upstreamDir = await opensslCa('upstream-mismatch', '/CN=a', P256, {
      key: 'other.key',
      cert: UPSTREAM.cert,
    });
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    writeFileSync(
      join(upstreamDir, UPSTREAM.key),
      otherKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await expect(loadUpstreamCa(upstreamDir)).rejects.toThrow(
      /upstreamCA\.crt: the key does not belong to the certificate/,
    );
  });
});

describe('authorities kept in the Secret', () => {
  it('load back as issued by themselves, or by the upstream CA that signed them', async () => {
    const self = await authorityOf('ec-p256');
    const loaded = loadAuthority(self.stored, 'stored authority');
    expect(issuedBy(loaded, undefined)).toBe(true);
    const upstream = await loadUpstreamCa(join(dir, 'upstream-root'));
    expect(issuedBy(loaded, upstream)).toBe(false);
    const below = loadAuthority((await authorityOf('ec-p256', upstream)).stored, 'intermediate');
    expect(issuedBy(below, upstream)).toBe(true);
    expect(issuedBy(below, undefined)).toBe(false);
  });
});
