// The upstream CA configuration file (--mtls-upstream-ca-conf): YAML or JSON
// {apiVersion: v1, upstreamAuthority: <type>, config: {...}}, checked field by field against
// NGINX Service Mesh's schema for all five types. This mesh's registrar chains to a CA on disk
// only, so the other four are reported as unsupported rather than silently ignored. Pure: the
// caller reads the files (upstreamCaFilePaths says which) and passes their contents.
import type * as Yaml from 'yaml';
import { quoteGo } from '../../render/help';
import { MAX_DOCUMENT_DEPTH } from '../constants';
import { nestsDeeperThan } from '../document-depth';
import type { DiskUpstreamAuthority } from './types';

type Json = Readonly<Record<string, unknown>>;

interface ObjectRules {
  readonly required: readonly string[];
  readonly optional: readonly string[];
  /** Fields that must look like an AWS ARN (schema pattern arn:(.*:){4}.*). */
  readonly arns?: readonly string[];
  readonly booleans?: readonly string[];
  /** Required fields that must not be empty. */
  readonly nonEmpty?: readonly string[];
  /** Fields holding nested objects, with their own rules. */
  readonly objects?: Readonly<Record<string, ObjectRules>>;
  /** Unknown fields are allowed (the schema's cert-manager entry does not forbid them). */
  readonly open?: boolean;
}

const VAULT_AUTH_METHODS = ['cert_auth', 'token_auth', 'approle_auth'] as const;

const AUTHORITY_RULES: Readonly<Record<string, ObjectRules>> = {
  disk: { required: ['cert_file_path', 'key_file_path'], optional: ['bundle_file_path'] },
  aws_pca: {
    required: ['region', 'certificate_authority_arn'],
    optional: [
      'ca_signing_template_arn',
      'signing_algorithm',
      'assume_role_arn',
      'endpoint',
      'supplemental_bundle_path',
      'aws_access_key_id',
      'aws_secret_access_key',
    ],
    arns: ['certificate_authority_arn', 'ca_signing_template_arn', 'assume_role_arn'],
  },
  awssecret: {
    required: ['region', 'cert_file_arn', 'key_file_arn'],
    optional: ['aws_access_key_id', 'aws_secret_access_key', 'aws_secret_token', 'assume_role_arn'],
    arns: ['cert_file_arn', 'key_file_arn', 'assume_role_arn'],
  },
  vault: {
    required: ['vault_addr', 'namespace', 'ca_cert_path'],
    optional: ['pki_mount_point', 'insecure_skip_verify'],
    booleans: ['insecure_skip_verify'],
    objects: {
      cert_auth: {
        required: ['client_cert_path', 'client_key_path'],
        optional: ['cert_auth_mount_point', 'cert_auth_role_name'],
      },
      token_auth: { required: ['token'], optional: [] },
      approle_auth: {
        required: ['approle_id', 'approle_secret_id'],
        optional: ['approle_auth_mount_point'],
      },
    },
  },
  'cert-manager': {
    required: ['namespace', 'issuer_name'],
    optional: ['issuer_kind', 'issuer_group', 'kube_config_file'],
    nonEmpty: ['namespace', 'issuer_name'],
    open: true,
  },
};

const AUTHORITY_TYPES = Object.keys(AUTHORITY_RULES).sort();
const TOP_LEVEL_FIELDS = ['apiVersion', 'upstreamAuthority', 'config'];
const SUPPORTED_VERSIONS = ['v1'];

/** A scalar as written, anything else as JSON. */
function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The yaml library, required where a configuration is parsed rather than imported at the top:
 * the executable carries it as a separate bundle, and every start that parses no upstream CA
 * configuration (nearly all of them) would otherwise compile it.
 */
function yaml(): typeof Yaml {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  return require('yaml') as typeof Yaml;
}

function parseConf(text: string): { value: unknown } | { problem: string } {
  const tooDeep = {
    problem: `upstream authority yaml nests deeper than ${MAX_DOCUMENT_DEPTH} levels`,
  };
  let document: Yaml.Document;
  try {
    document = yaml().parseDocument(text, { prettyErrors: false });
  } catch (error) {
    if (error instanceof RangeError) return tooDeep;
    throw error;
  }
  const error = document.errors[0];
  // The yaml library reports V8's stack overflow on a deeply nested text as a document error.
  if (error?.message.includes('Maximum call stack size exceeded') === true) return tooDeep;
  if (error !== undefined) {
    const line = text.slice(0, error.pos[0]).split('\n').length;
    return {
      problem: `could not convert upstream authority yaml (line ${line}): ${error.message.split('\n')[0] ?? ''}`,
    };
  }
  const value = document.toJS() as unknown;
  return nestsDeeperThan(value, MAX_DOCUMENT_DEPTH) ? tooDeep : { value };
}

/** The files a disk upstream authority names (certificate, key, bundle), for the caller to read. */
export function upstreamCaFilePaths(confText: string): readonly string[] {
  const parsed = parseConf(confText);
  if (!('value' in parsed) || !isObject(parsed.value)) return [];
  const config = parsed.value.config;
  if (parsed.value.upstreamAuthority !== 'disk' || !isObject(config)) return [];
  return ['cert_file_path', 'key_file_path', 'bundle_file_path']
    .map((field) => config[field])
    .filter((path): path is string => typeof path === 'string' && path !== '');
}

function objectProblems(value: unknown, rules: ObjectRules, path: string): string[] {
  if (!isObject(value)) return [`${path}: must be a mapping`];
  const problems: string[] = [];
  const known = [...rules.required, ...rules.optional, ...Object.keys(rules.objects ?? {})];
  for (const field of rules.required) {
    if (value[field] === undefined) problems.push(`${path}.${field}: required`);
  }
  for (const [field, fieldValue] of Object.entries(value)) {
    const nested = rules.objects?.[field];
    if (nested !== undefined)
      problems.push(...objectProblems(fieldValue, nested, `${path}.${field}`));
    else if (known.includes(field)) problems.push(...fieldProblems(fieldValue, field, rules, path));
    else if (rules.open !== true) problems.push(`${path}.${field}: unknown field`);
  }
  return problems;
}

function fieldProblems(value: unknown, field: string, rules: ObjectRules, path: string): string[] {
  const name = `${path}.${field}`;
  if (rules.booleans?.includes(field) === true) {
    return typeof value === 'boolean' ? [] : [`${name}: must be true or false`];
  }
  if (typeof value !== 'string') return [`${name}: must be a string`];
  if (rules.arns?.includes(field) === true && !/arn:(.*:){4}.*/.test(value)) {
    return [
      `${name}: ${quoteGo(value)} is not an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)`,
    ];
  }
  if (rules.nonEmpty?.includes(field) === true && value === '')
    return [`${name}: must not be empty`];
  return [];
}

function vaultAuthProblems(config: unknown): string[] {
  if (!isObject(config)) return [];
  const given = VAULT_AUTH_METHODS.filter((method) => config[method] !== undefined);
  return given.length === 1
    ? []
    : [`config: exactly one of ${VAULT_AUTH_METHODS.join(', ')} is required`];
}

function metaProblems(conf: Json): string[] {
  const problems: string[] = [];
  for (const field of TOP_LEVEL_FIELDS) {
    if (conf[field] === undefined) problems.push(`${field}: required`);
  }
  for (const field of Object.keys(conf)) {
    if (!TOP_LEVEL_FIELDS.includes(field)) problems.push(`${field}: unknown field`);
  }
  const version = conf.apiVersion;
  if (
    version !== undefined &&
    (typeof version !== 'string' || !SUPPORTED_VERSIONS.includes(version))
  ) {
    problems.push(`apiVersion: unsupported upstream authority version: ${show(version)}`);
  }
  const type = conf.upstreamAuthority;
  if (type !== undefined && (typeof type !== 'string' || AUTHORITY_RULES[type] === undefined)) {
    problems.push(
      `upstreamAuthority: invalid value ${quoteGo(show(type))}: must be one of ${AUTHORITY_TYPES.join(', ')}`,
    );
  }
  return problems;
}

/** PEM blocks of a text that holds nothing else; undefined when it is not such a text. */
function pemBlockTypes(text: string): readonly string[] | undefined {
  const block = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+-----END \1-----/y;
  const types: string[] = [];
  const trimmed = text.trim();
  let index = 0;
  while (index < trimmed.length) {
    block.lastIndex = index;
    const match = block.exec(trimmed);
    if (match === null) return undefined;
    types.push(match[1] ?? '');
    index = block.lastIndex;
    while (/\s/.test(trimmed[index] ?? '')) index += 1;
  }
  return types.length === 0 ? undefined : types;
}

/** NGINX Service Mesh's PEM checks: certificate and key one block each, the bundle a chain. */
function pemProblem(text: string, kind: 'certificate' | 'key' | 'bundle'): string | undefined {
  const label = {
    certificate: 'invalid certificate',
    key: 'invalid private key',
    bundle: 'invalid bundle',
  }[kind];
  const resource = kind === 'key' ? 'key' : 'certificate';
  const types = pemBlockTypes(text);
  const fits = (type: string): boolean =>
    kind === 'key' ? type.endsWith('PRIVATE KEY') : type === 'CERTIFICATE';
  if (types === undefined || !types.every(fits)) return `${label}: not pem encoded: ${resource}`;
  if (types.length > 1 && kind !== 'bundle') return `${label}: chain not allowed: ${resource}`;
  return undefined;
}

function diskAuthority(
  config: Json,
  files: ReadonlyMap<string, string>,
): DiskUpstreamAuthority | { problems: string[] } {
  const problems: string[] = [];
  const read = (field: string, kind: 'certificate' | 'key' | 'bundle'): string => {
    const path = config[field];
    if (typeof path !== 'string' || path === '') return '';
    const text = files.get(path);
    const problem = text === undefined ? 'the file could not be read' : pemProblem(text, kind);
    if (problem !== undefined) problems.push(`config.${field} ${quoteGo(path)}: ${problem}`);
    return text ?? '';
  };
  const authority: DiskUpstreamAuthority = {
    type: 'disk',
    cert: read('cert_file_path', 'certificate'),
    key: read('key_file_path', 'key'),
    bundle: read('bundle_file_path', 'bundle'),
  };
  return problems.length > 0 ? { problems } : authority;
}

/**
 * The upstream authority a configuration file describes, or every problem with it, each naming
 * the flag, the file and the field.
 */
export function parseUpstreamAuthority(
  confPath: string,
  confText: string,
  files: ReadonlyMap<string, string>,
): { authority: DiskUpstreamAuthority } | { problems: readonly string[] } {
  const prefix = `--mtls-upstream-ca-conf ${quoteGo(confPath)}: `;
  const fail = (problems: readonly string[]): { problems: readonly string[] } => ({
    problems: problems.map((problem) => prefix + problem),
  });
  const parsed = parseConf(confText);
  if ('problem' in parsed) return fail([parsed.problem]);
  if (!isObject(parsed.value)) {
    return fail(['must be a mapping with apiVersion, upstreamAuthority and config']);
  }
  const conf = parsed.value;
  const problems = metaProblems(conf);
  const type = typeof conf.upstreamAuthority === 'string' ? conf.upstreamAuthority : '';
  const rules = AUTHORITY_RULES[type];
  if (rules !== undefined && conf.config !== undefined) {
    problems.push(...objectProblems(conf.config, rules, 'config'));
    if (type === 'vault') problems.push(...vaultAuthProblems(conf.config));
  }
  if (rules !== undefined && type !== 'disk') {
    problems.push(
      `upstreamAuthority: ${quoteGo(type)} is not supported by this mesh: use "disk" with the CA's certificate and key files`,
    );
  }
  if (problems.length > 0 || !isObject(conf.config)) return fail(problems);
  const disk = diskAuthority(conf.config, files);
  return 'problems' in disk ? fail(disk.problems) : { authority: disk };
}
