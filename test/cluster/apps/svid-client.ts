// A workload of the test cluster that runs the mesh's SVID client as a sidecar would: it reads
// its projected token and the mounted trust bundle, keeps svid.pem and bundle.crt current in
// --output-dir, and answers GET / with what it holds. Settings come as `--name=value` arguments
// (as the agent role takes them: the registrar gives SVIDs only to containers shaped like the
// sidecar, which set no other environment) or as the environment variables TOKEN_PATH, … Every 100 ms it checks the certificate on
// disk as a TLS peer would (unexpired, chaining to a root of the bundle beside it) and counts
// the moments it would have failed.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { systemClock } from '../../../src/runtime/clock';
import { createJsonLogger } from '../../../src/runtime/role/log';
import { startSvidClient } from '../../../src/runtime/svid/svid-client';

const env = (name: string): string => {
  const flag = `--${name.toLowerCase().replaceAll('_', '-')}=`;
  const value =
    process.argv.find((arg) => arg.startsWith(flag))?.slice(flag.length) ?? process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
};
const outputDir = env('OUTPUT_DIR');
const logger = createJsonLogger({ level: 'info', out: process.stderr, now: () => new Date() });
const client = startSvidClient(
  {
    tokenPath: env('TOKEN_PATH'),
    registrarUrl: env('REGISTRAR_URL'),
    serverName: env('REGISTRAR_SERVER_NAME'),
    bundlePath: env('BUNDLE_PATH'),
    outputDir,
  },
  { clock: systemClock, logger, random: Math.random },
);

const certificates = (pem: string): X509Certificate[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );

let checks = 0;
const violations: string[] = [];
const issuers = new Set<string>();

function check(): void {
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = certificates(readFileSync(join(outputDir, 'svid.pem'), 'utf8'));
    roots = certificates(readFileSync(join(outputDir, 'bundle.crt'), 'utf8'));
  } catch {
    return; // nothing written yet
  }
  checks += 1;
  const [leaf, issuer] = chain;
  if (leaf === undefined || issuer === undefined) return void violations.push('incomplete chain');
  const now = Date.now();
  if (now >= Date.parse(leaf.validTo))
    violations.push(`expired ${leaf.validTo} at ${new Date(now).toISOString()}`);
  if (!leaf.verify(issuer.publicKey)) violations.push('leaf not signed by its issuer');
  if (!roots.some((root) => root.fingerprint256 === issuer.fingerprint256)) {
    violations.push(`issuer ${issuer.fingerprint256} not in the bundle`);
  }
  if (now >= Date.parse(issuer.validTo)) violations.push('issuer expired');
  issuers.add(issuer.fingerprint256);
}
setInterval(check, 100);

http
  .createServer((_req, res) => {
    const current = client.current();
    let svid = '';
    try {
      svid = readFileSync(join(outputDir, 'svid.pem'), 'utf8').replace(
        /-----BEGIN PRIVATE KEY-----[\s\S]+$/,
        '',
      );
    } catch {
      // not written yet
    }
    res
      .writeHead(200, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ current, svid, checks, violations, issuers: [...issuers] }));
  })
  .listen(Number(process.env.HTTP_PORT ?? 8080));
