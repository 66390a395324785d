// The upstream CA configuration file: every field of NGINX Service Mesh's schema is checked and
// each problem names the flag, the file and the field; only "disk" is supported.
import {
  buildMeshConfig,
  defaultDeployInput,
  parseUpstreamAuthority,
  upstreamCaFilePaths,
} from '../../src/manifests/mesh-config';

import {
  FIXTURE_CERT as CERT,
  FIXTURE_EC_KEY as EC_KEY,
  FIXTURE_KEY as KEY,
  FIXTURE_OTHER_CERT as OTHER_CERT,
} from '../support/pem-fixtures';

const DISK = `apiVersion: v1
upstreamAuthority: disk
config:
  cert_file_path: /certs/ca.pem
  key_file_path: /certs/ca.key
  bundle_file_path: /certs/bundle.pem
`;

const files = new Map([
  ['/certs/ca.pem', CERT],
  ['/certs/ca.key', KEY],
  ['/certs/bundle.pem', CERT + OTHER_CERT],
]);

function problems(conf: string, given: ReadonlyMap<string, string> = files): readonly string[] {
  const parsed = parseUpstreamAuthority('ca.yaml', conf, given);
  return 'problems' in parsed ? parsed.problems : [];
}

const prefix = '--mtls-upstream-ca-conf "ca.yaml": ';

describe('upstream CA configuration', () => {
  it('reads a disk authority: certificate, key and bundle', () => {
    expect(parseUpstreamAuthority('ca.yaml', DISK, files)).toEqual({
      authority: { type: 'disk', cert: CERT, key: KEY, bundle: CERT + OTHER_CERT },
    });
  });

  it('accepts JSON, an EC key and no bundle', () => {
    const conf = JSON.stringify({
      apiVersion: 'v1',
      upstreamAuthority: 'disk',
      config: { cert_file_path: 'c.pem', key_file_path: 'k.pem' },
    });
    expect(
      parseUpstreamAuthority(
        'ca.json',
        conf,
        new Map([
          ['c.pem', CERT],
          ['k.pem', EC_KEY],
        ]),
      ),
    ).toEqual({ authority: { type: 'disk', cert: CERT, key: EC_KEY, bundle: '' } });
  });

  it('names the files the caller must read', () => {
    expect(upstreamCaFilePaths(DISK)).toEqual([
      '/certs/ca.pem',
      '/certs/ca.key',
      '/certs/bundle.pem',
    ]);
    expect(upstreamCaFilePaths('apiVersion: v1\nupstreamAuthority: vault\n')).toEqual([]);
    expect(upstreamCaFilePaths(': : :')).toEqual([]);
  });

  it.each<[string, string, string[]]>([
    [
      'YAML that does not parse',
      'apiVersion: [v1',
      ['could not convert upstream authority yaml (line 1): '],
    ],
    ['a list', '- v1\n', ['must be a mapping with apiVersion, upstreamAuthority and config']],
    ['missing fields', 'apiVersion: v1\n', ['upstreamAuthority: required', 'config: required']],
    ['an unknown field', DISK + 'extra: 1\n', ['extra: unknown field']],
    [
      'another version',
      DISK.replace('v1', 'v2'),
      ['apiVersion: unsupported upstream authority version: v2'],
    ],
    [
      'an unknown type',
      DISK.replace('upstreamAuthority: disk', 'upstreamAuthority: local'),
      [
        'upstreamAuthority: invalid value "local": must be one of aws_pca, awssecret, cert-manager, disk, vault',
      ],
    ],
    [
      'a disk config without a key',
      'apiVersion: v1\nupstreamAuthority: disk\nconfig:\n  cert_file_path: /certs/ca.pem\n',
      ['config.key_file_path: required'],
    ],
    [
      'a disk config field of the wrong type',
      DISK.replace('/certs/bundle.pem', '42'),
      ['config.bundle_file_path: must be a string'],
    ],
    [
      'a misspelt disk field',
      DISK.replace('bundle_file_path', 'bundle_path'),
      ['config.bundle_path: unknown field'],
    ],
    [
      'config that is not a mapping',
      'apiVersion: v1\nupstreamAuthority: disk\nconfig: disk.pem\n',
      ['config: must be a mapping'],
    ],
    [
      'YAML nested 100000 deep',
      `apiVersion: v1\nextra: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`,
      ['upstream authority yaml nests deeper than 512 levels'],
    ],
    [
      'YAML nested one level deeper than 512',
      `apiVersion: v1\nextra: ${'['.repeat(512)}${']'.repeat(512)}\n`,
      ['upstream authority yaml nests deeper than 512 levels'],
    ],
  ])('rejects %s', (_name, conf, expected) => {
    const found = problems(conf);
    expect(found).toHaveLength(expected.length);
    found.forEach((problem, index) =>
      expect(problem.startsWith(prefix + (expected[index] ?? ''))).toBe(true),
    );
  });

  it.each<[string, ReadonlyMap<string, string>, string]>([
    [
      'an unreadable certificate',
      new Map([...files].filter(([path]) => path !== '/certs/ca.pem')),
      'config.cert_file_path "/certs/ca.pem": the file could not be read',
    ],
    [
      'a certificate that is not PEM',
      new Map([...files, ['/certs/ca.pem', 'not a certificate']]),
      'config.cert_file_path "/certs/ca.pem": invalid certificate: not pem encoded: certificate',
    ],
    [
      'a certificate chain',
      new Map([...files, ['/certs/ca.pem', CERT + OTHER_CERT]]),
      'config.cert_file_path "/certs/ca.pem": invalid certificate: chain not allowed: certificate',
    ],
    [
      'a key in the certificate file',
      new Map([...files, ['/certs/ca.pem', KEY]]),
      'config.cert_file_path "/certs/ca.pem": invalid certificate: not pem encoded: certificate',
    ],
    [
      'a certificate in the key file',
      new Map([...files, ['/certs/ca.key', CERT]]),
      'config.key_file_path "/certs/ca.key": invalid private key: not pem encoded: key',
    ],
    [
      'two keys',
      new Map([...files, ['/certs/ca.key', KEY + KEY]]),
      'config.key_file_path "/certs/ca.key": invalid private key: chain not allowed: key',
    ],
    [
      'a bundle with trailing text',
      new Map([...files, ['/certs/bundle.pem', CERT + 'junk']]),
      'config.bundle_file_path "/certs/bundle.pem": invalid bundle: not pem encoded: certificate',
    ],
  ])('rejects %s', (_name, given, expected) => {
    expect(problems(DISK, given)).toEqual([prefix + expected]);
  });

  const unsupported = (type: string): string =>
    `upstreamAuthority: "${type}" is not supported by this mesh: use "disk" with the CA's certificate and key files`;

  it.each<[string, string, string[]]>([
    [
      'aws_pca',
      'region: us-east-1\ncertificate_authority_arn: arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x',
      [],
    ],
    [
      'aws_pca',
      'region: us-east-1\ncertificate_authority_arn: not-an-arn',
      [
        'config.certificate_authority_arn: "not-an-arn" is not an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)',
      ],
    ],
    [
      'awssecret',
      'region: us-east-1\ncert_file_arn: arn:a:b:c:d:e',
      ['config.key_file_arn: required'],
    ],
    [
      'vault',
      'vault_addr: https://vault:8200\nnamespace: ns\nca_cert_path: /ca.pem\ntoken_auth:\n  token: t',
      [],
    ],
    [
      'vault',
      'vault_addr: https://vault:8200\nnamespace: ns\nca_cert_path: /ca.pem\ninsecure_skip_verify: "yes"',
      [
        'config.insecure_skip_verify: must be true or false',
        'config: exactly one of cert_auth, token_auth, approle_auth is required',
      ],
    ],
    [
      'vault',
      'vault_addr: https://vault:8200\nnamespace: ns\nca_cert_path: /ca.pem\napprole_auth:\n  approle_id: id',
      ['config.approle_auth.approle_secret_id: required'],
    ],
    [
      'cert-manager',
      'namespace: ""\nissuer_name: ca-issuer\nanything: goes',
      ['config.namespace: must not be empty'],
    ],
  ])(
    'checks a %s configuration, then reports the type as unsupported',
    (type, config, expected) => {
      const conf = `apiVersion: v1\nupstreamAuthority: ${type}\nconfig:\n${config.replace(/^/gm, '  ')}\n`;
      expect(problems(conf)).toEqual(
        [...expected, unsupported(type)].map((problem) => prefix + problem),
      );
    },
  );

  it('reports upstream CA problems under --mtls-upstream-ca-conf among the other flags', () => {
    const outcome = buildMeshConfig(
      {
        ...defaultDeployInput('0.1.0'),
        mtlsUpstreamCaConf: 'ca.yaml',
        mtlsMode: 'tight',
        nginxLogFormat: 'xml',
      },
      {
        namespace: 'nginx-mesh',
        files: new Map([['ca.yaml', DISK.replace('v1', 'v9')], ...files]),
      },
    );
    expect('problems' in outcome ? outcome.problems : []).toEqual([
      'invalid value "tight" for --mtls-mode: must be one of off, permissive, strict',
      `${prefix}apiVersion: unsupported upstream authority version: v9`,
      'invalid value "xml" for --nginx-log-format: must be one of default, json',
    ]);
  });

  it('passes the CA to deploy as a secret, never into the configuration', () => {
    const outcome = buildMeshConfig(
      { ...defaultDeployInput('0.1.0'), mtlsUpstreamCaConf: 'ca.yaml' },
      { namespace: 'nginx-mesh', files: new Map([['ca.yaml', DISK], ...files]) },
    );
    expect('problems' in outcome ? outcome.problems : outcome.secrets).toEqual({
      upstreamAuthority: { type: 'disk', cert: CERT, key: KEY, bundle: CERT + OTHER_CERT },
    });
  });
});
