// The sidecar's nginx configuration in transparent mode: every redirected connection goes on
// to its original destination unchanged (outbound 8900, inbound 8901), and rewritten HTTP(S)
// health probes (8895/8896) are forwarded to the app. This is how the proxy runs before the
// controller's configuration applies, and while the mesh is being removed. Pure.
//
// Two stages: buildTransparentModel decides, printNginxConfig prints.

export interface HealthRedirect {
  /** Port of the app's original probe (named ports already resolved). */
  readonly port: number;
  readonly path: string;
  readonly scheme: 'HTTP' | 'HTTPS';
}

export interface TransparentOptions {
  /** Writable directory for the pid file and nginx's temporary files. */
  readonly runDir: string;
  /** Absolute paths of the modules to load, in order (the stream module first). */
  readonly modules: readonly string[];
  readonly errorLogLevel: string;
  /** Listen on IPv6 too (the pod's namespace has IPv6). */
  readonly ipv6: boolean;
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly healthHttpPort: number;
  readonly healthHttpsPort: number;
  /** The redirect table: rewritten probe path → the app's original probe. */
  readonly healthRedirects: Readonly<Record<string, HealthRedirect>>;
  /**
   * Closed instead of transparent: every redirected connection is accepted and closed at once.
   * A strict-mTLS sidecar runs this until its first mesh configuration, so that no plaintext
   * reaches the app or leaves it. Probe redirects still work.
   */
  readonly closed?: boolean;
}

/** One nginx directive or block; a block has children. */
export interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  readonly children?: readonly Directive[];
}

const d = (name: string, ...args: string[]): Directive => ({ name, args });
const block = (
  name: string,
  args: readonly string[],
  children: readonly Directive[],
): Directive => ({
  name,
  args,
  children,
});

function listens(port: number, ipv6: boolean): Directive[] {
  return ipv6
    ? [d('listen', String(port)), d('listen', `[::]:${port}`, 'ipv6only=on')]
    : [d('listen', String(port))];
}

/** What the probe redirect servers need; the mesh configuration serves them the same way. */
export type HealthServerOptions = Pick<
  TransparentOptions,
  'ipv6' | 'healthHttpPort' | 'healthHttpsPort' | 'healthRedirects'
>;

function healthServer(
  options: HealthServerOptions,
  scheme: 'HTTP' | 'HTTPS',
  port: number,
): Directive {
  const paths = Object.keys(options.healthRedirects)
    .filter((path) => options.healthRedirects[path]?.scheme === scheme)
    .sort();
  const locations = paths.map((path) => {
    const target = options.healthRedirects[path];
    const upstream = `${scheme === 'HTTPS' ? 'https' : 'http'}://$server_addr:${target?.port ?? 0}${target?.path ?? '/'}`;
    return block(
      'location',
      ['=', path],
      [
        d('proxy_pass', upstream),
        d('proxy_bind', PROBE_SOURCE_VARIABLE),
        ...(scheme === 'HTTPS' ? [d('proxy_ssl_verify', 'off')] : []),
      ],
    );
  });
  return block(
    'server',
    [],
    [...listens(port, options.ipv6), ...locations, block('location', ['/'], [d('return', '404')])],
  );
}

/**
 * The source address of the sidecar's connections to the app at the pod's IPv4 address (probes,
 * and inbound traffic in transparent mode): a loopback one, which the init rules leave direct,
 * where the sidecar's other connections to its own pod go through its inbound port
 * (src/render/iptables-rules.ts). Over IPv6, none (the kernel's).
 */
export const PROBE_SOURCE_ADDRESS = '127.0.0.6';
const PROBE_SOURCE_VARIABLE = '$mesh_probe_source';

/** The probe redirect servers (HTTP, HTTPS) the redirect table needs, none when it is empty. */
export function buildHealthServers(options: HealthServerOptions): Directive[] {
  const servers: Directive[] = [];
  const schemes = new Set(
    Object.values(options.healthRedirects).map((redirect) => redirect.scheme),
  );
  if (schemes.has('HTTP')) servers.push(healthServer(options, 'HTTP', options.healthHttpPort));
  if (schemes.has('HTTPS')) servers.push(healthServer(options, 'HTTPS', options.healthHttpsPort));
  if (servers.length === 0) return servers;
  return [probeSourceMap(), ...servers];
}

/** $mesh_probe_source: PROBE_SOURCE_ADDRESS when this end's address is IPv4, else empty. */
function probeSourceMap(): Directive {
  return block(
    'map',
    ['$server_addr', PROBE_SOURCE_VARIABLE],
    [d('default', ''), d('"~^[0-9.]+$"', PROBE_SOURCE_ADDRESS)],
  );
}

/** The whole configuration as a directive tree. */
export function buildTransparentModel(options: TransparentOptions): Directive[] {
  const temp = (name: string): Directive => d(`${name}_temp_path`, `${options.runDir}/${name}`);
  const passThrough = (port: number, inbound: boolean): Directive =>
    block(
      'server',
      [],
      [
        ...listens(port, options.ipv6),
        ...(options.closed === true
          ? [d('return', '')]
          : [
              // The original destination, recovered by our module from the REDIRECT.
              d('proxy_pass', '$mesh_original_dst'),
              // Inbound, that is this pod's own address: from a loopback source, which the init
              // rules leave direct (any other connection of the sidecar to its own pod goes to
              // the inbound port, and would come back here).
              ...(inbound ? [d('proxy_bind', PROBE_SOURCE_VARIABLE)] : []),
            ]),
      ],
    );
  const httpServers = buildHealthServers(options);
  return [
    ...options.modules.map((module) => d('load_module', module)),
    d('worker_processes', '1'),
    d('pid', `${options.runDir}/nginx.pid`),
    d('error_log', 'stderr', options.errorLogLevel),
    block('events', [], [d('worker_connections', '1024')]),
    // A half-closed connection stays open for the answer, as it would without a proxy.
    block(
      'stream',
      [],
      [
        d('proxy_half_close', 'on'),
        ...(options.closed === true ? [] : [probeSourceMap()]),
        passThrough(options.outboundPort, false),
        passThrough(options.inboundPort, true),
      ],
    ),
    block(
      'http',
      [],
      [
        d('access_log', 'off'),
        temp('client_body'),
        temp('proxy'),
        temp('fastcgi'),
        temp('uwsgi'),
        temp('scgi'),
        ...httpServers,
      ],
    ),
  ];
}

/** Quotes an argument when nginx would otherwise split or misread it. */
export function printArg(arg: string): string {
  if (/^[^\s;{}"'\\#]+$/.test(arg)) return arg;
  return `"${arg.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Prints directives mechanically, four-space indented. */
export function printNginxConfig(directives: readonly Directive[], depth = 0): string {
  const indent = '    '.repeat(depth);
  return directives
    .map((directive) => {
      const head = [directive.name, ...directive.args.map(printArg)].join(' ');
      if (directive.children === undefined) return `${indent}${head};\n`;
      return `${indent}${head} {\n${printNginxConfig(directive.children, depth + 1)}${indent}}\n`;
    })
    .join('');
}

/** Parses and checks the --health-redirects JSON the injector passes to the sidecar. */
export function parseHealthRedirects(json: string): Record<string, HealthRedirect> {
  if (json === '') return {};
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('--health-redirects: expected a JSON object');
  }
  const result: Record<string, HealthRedirect> = {};
  for (const [path, value] of Object.entries(parsed as Record<string, unknown>)) {
    const entry = value as { port?: unknown; path?: unknown; scheme?: unknown };
    if (
      !path.startsWith('/') ||
      typeof entry.port !== 'number' ||
      entry.port < 1 ||
      entry.port > 65535
    ) {
      throw new Error(`--health-redirects: invalid entry for ${JSON.stringify(path)}`);
    }
    result[path] = {
      port: entry.port,
      path: typeof entry.path === 'string' && entry.path !== '' ? entry.path : '/',
      scheme: entry.scheme === 'HTTPS' ? 'HTTPS' : 'HTTP',
    };
  }
  return result;
}
