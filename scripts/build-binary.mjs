// Builds dist/nginx-meshctl: esbuild bundles the TypeScript into one CommonJS file, Node's
// single-executable-application support embeds it into a copy of the pinned Node binary.
// Nothing is downloaded: the Node binary is the one npm installed (package "node").
//
//   node scripts/build-binary.mjs             build
//   node scripts/build-binary.mjs --if-stale  build only when a source is newer than the binary
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const output = join(dist, 'nginx-meshctl');
const bundle = join(dist, 'nginx-meshctl.cjs');
const blob = join(dist, 'sea-prep.blob');
const MIN_NODE_MAJOR = 24;

/**
 * Libraries bundled on their own and compiled only on first use (src/runtime/lazy-module.ts).
 * The main bundle refers to them through a stub, so `--help` and `version` never compile them.
 */
const LAZY_BUNDLES = [
  { specifier: '@kubernetes/client-node', asset: 'client-node.cjs', prelude: [] },
  // @peculiar/x509's dependency injection needs the Reflect metadata polyfill loaded first.
  { specifier: '@peculiar/x509', asset: 'x509.cjs', prelude: ['reflect-metadata'] },
  // Used by inject, config -o yaml and deploy; not by --help or version.
  { specifier: 'yaml', asset: 'yaml.cjs', prelude: [] },
  // The spinner of deploy, upgrade and remove on a terminal, with its 30 KB of spinner frames.
  { specifier: 'ora', asset: 'ora.cjs', prelude: [] },
  // The Gateway API CRDs (scripts/build-gateway-api.sh), half a megabyte only deploy and upgrade
  // read; imported by a relative path, so matched by the file's name.
  {
    specifier: './src/manifests/gateway-api/crds.generated.json',
    filter: /\/crds\.generated\.json$/,
    asset: 'gateway-api-crds.cjs',
    prelude: [],
  },
];

/**
 * What only role processes (`run --role …`) run: the frame and each role's start, with all they
 * import. They go into lazy bundles of their own, so that every other command starts without
 * them. The agent, which runs in every meshed pod, has a bundle of its own, with the frame, so
 * that it neither compiles nor keeps the control plane's code; the control-plane roles share
 * the other. A process runs one role and so loads one of them, and the frame's classes (errors
 * caught by the frame, say) exist once in it.
 */
const ROLE_BUNDLES = [
  {
    asset: 'agent.cjs',
    modules: [
      ['src/runtime/role/agent-frame.ts', 'runRole'],
      ['src/runtime/agent/start-agent.ts', 'startAgent'],
    ],
  },
  {
    asset: 'roles.cjs',
    modules: [
      ['src/runtime/role/frame.ts', 'runRole'],
      ['src/runtime/controller/start-controller.ts', 'startController'],
      ['src/runtime/registrar/start-registrar.ts', 'startRegistrar'],
      ['src/runtime/metrics/start-metrics.ts', 'startMetrics'],
      ['src/runtime/cert-reloader/start-cert-reloader.ts', 'startCertReloader'],
    ],
  },
];

/** The SEA fuse Node looks for; fixed by Node's single-executable-application design. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function assertSupportedNode() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    throw new Error(
      `build-binary: Node ${process.versions.node} is not supported; run through npm (npm run build:binary) so the pinned Node ${MIN_NODE_MAJOR}+ from node_modules is used`,
    );
  }
}

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Records what the binary was built from, so that a new commit alone makes it stale. */
const stampFile = join(dist, 'build-stamp.json');

function isStale() {
  if (!existsSync(output) || !existsSync(stampFile)) return true;
  if (JSON.parse(readFileSync(stampFile, 'utf8')).commit !== gitCommit()) return true;
  const built = statSync(output).mtimeMs;
  const inputs = [
    newestSource(join(root, 'src')),
    newestSource(join(root, 'bin')),
    statSync(join(root, 'package-lock.json')).mtimeMs,
    statSync(fileURLToPath(import.meta.url)).mtimeMs,
  ];
  return inputs.some((time) => time > built);
}

/** The commit `version` reports: NGINX_MESHCTL_COMMIT when set (image builds have no .git). */
function gitCommit() {
  if (process.env.NGINX_MESHCTL_COMMIT) return process.env.NGINX_MESHCTL_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short=7', 'HEAD'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return 'local';
  }
}

/**
 * postject's bundled LIEF warns about Node's .note sections on every run; the warnings are
 * harmless and would hide real problems, so they are filtered out.
 */
function injectBlob(target) {
  const cli = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
  const result = spawnSync(
    process.execPath,
    [cli, target, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE],
    { encoding: 'utf8' },
  );
  const noise = [
    /^warning: Can't find string offset for section name '\.note[.\d]*'$/,
    /^Start injection of NODE_SEA_BLOB in /,
    /Injection done!$/,
  ];
  const output = `${result.stdout}${result.stderr}`
    // eslint-disable-next-line no-control-regex -- strips the colour codes postject prints
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .filter((line) => line !== '' && !noise.some((pattern) => pattern.test(line)));
  if (output.length > 0) console.error(output.join('\n'));
  if (result.status !== 0) throw new Error(`postject failed with exit code ${result.status}`);
}

/** esbuild plugin: imports of a lazy library become a stub that loads its bundle on demand. */
const lazyBundles = {
  name: 'lazy-bundles',
  setup(builder) {
    for (const { specifier, asset, filter: byName } of LAZY_BUNDLES) {
      const filter = byName ?? new RegExp(`^${specifier.replace(/[/.@-]/g, (c) => `\\${c}`)}$`);
      builder.onResolve({ filter }, () => ({ path: asset, namespace: 'lazy-bundle' }));
    }
    builder.onLoad({ filter: /.*/, namespace: 'lazy-bundle' }, (args) => ({
      contents: `module.exports = require('./src/runtime/lazy-module').loadLazyBundle(${JSON.stringify(args.path)});`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

/**
 * esbuild plugin for the main bundle: the dynamic imports of the role modules become the stub
 * that loads their ROLE_BUNDLES entry (which exports each of its modules' entry points) on
 * first use.
 */
const roleBundle = {
  name: 'role-bundle',
  setup(builder) {
    const bundles = new Map(
      ROLE_BUNDLES.flatMap(({ asset, modules }) =>
        modules.map(([file]) => [join(root, file), asset]),
      ),
    );
    builder.onResolve({ filter: /(start-[a-z-]+|role\/(agent-)?frame)$/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const asset = bundles.get(`${join(args.resolveDir, args.path)}.ts`);
      return asset === undefined ? undefined : { path: asset, namespace: 'lazy-bundle' };
    });
  },
};

/**
 * commander requires child_process at load time for a feature this CLI does not use
 * (executable subcommands); loading it pulls in net, dgram and streams on every start. The
 * main bundle gets a stand-in that loads the real module on first property access.
 */
const deferChildProcess = {
  name: 'defer-child-process',
  setup(builder) {
    builder.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes(`${'/node_modules/'}commander/`)
        ? { path: 'child_process', namespace: 'deferred-builtin' }
        : undefined,
    );
    builder.onLoad({ filter: /.*/, namespace: 'deferred-builtin' }, () => ({
      contents:
        "let real; const load = () => (real ??= require('node:child_process'));\n" +
        'module.exports = new Proxy({}, { get: (_, key) => load()[key], has: (_, key) => key in load() });\n',
      loader: 'js',
    }));
  },
};

const commonOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: `node${MIN_NODE_MAJOR}`,
  minify: true,
  legalComments: 'none',
  // Optional native accelerators of ws; the pure-JS fallbacks are used.
  external: ['bufferutil', 'utf-8-validate'],
  define: { 'import.meta.url': 'undefined' },
  logLevel: 'warning',
};

/**
 * The generated Gateway API CRDs the bundle embeds: made by scripts/build-gateway-api.sh (which
 * scripts/install.sh runs) when missing here; an image build finds them in its context.
 */
function ensureGatewayApiCrds() {
  const generated = join(root, 'src', 'manifests', 'gateway-api', 'crds.generated.json');
  const script = join(root, 'scripts', 'build-gateway-api.sh');
  if (existsSync(script))
    execFileSync('bash', [script], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(generated)) {
    throw new Error(`build-binary: ${generated} is missing: run scripts/build-gateway-api.sh`);
  }
}

async function main() {
  assertSupportedNode();
  ensureGatewayApiCrds();
  if (process.argv.includes('--if-stale') && !isStale()) {
    console.error(`build-binary: ${output} is up to date`);
    return;
  }
  const started = performance.now();
  mkdirSync(dist, { recursive: true });
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const commit = gitCommit();
  await build({
    ...commonOptions,
    entryPoints: [join(root, 'bin', 'nginx-meshctl.ts')],
    outfile: bundle,
    plugins: [roleBundle, lazyBundles, deferChildProcess],
    define: {
      ...commonOptions.define,
      __NGINX_MESHCTL_VERSION__: JSON.stringify(version),
      __NGINX_MESHCTL_COMMIT__: JSON.stringify(commit),
    },
  });
  const assets = {};
  for (const { specifier, asset } of LAZY_BUNDLES) {
    const outfile = join(dist, asset);
    await build({
      ...commonOptions,
      stdin: {
        contents: `module.exports = require(${JSON.stringify(specifier)});`,
        resolveDir: root,
      },
      outfile,
    });
    assets[asset] = outfile;
  }
  for (const { asset, modules } of ROLE_BUNDLES) {
    const outfile = join(dist, asset);
    await build({
      ...commonOptions,
      stdin: {
        contents: modules
          .map(
            ([file, name]) => `exports.${name} = require(${JSON.stringify(`./${file}`)}).${name};`,
          )
          .join('\n'),
        resolveDir: root,
        loader: 'ts',
      },
      outfile,
      plugins: [lazyBundles, deferChildProcess],
    });
    assets[asset] = outfile;
  }
  const seaConfig = join(dist, 'sea-config.json');
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      assets,
    }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const temporary = `${output}.tmp`;
  rmSync(temporary, { force: true });
  copyFileSync(process.execPath, temporary);
  chmodSync(temporary, 0o755);
  injectBlob(temporary);
  renameSync(temporary, output);
  writeFileSync(stampFile, JSON.stringify({ commit }));
  rmSync(blob, { force: true });
  rmSync(seaConfig, { force: true });
  const size = statSync(output).size / (1024 * 1024);
  const bundleSize = statSync(bundle).size / (1024 * 1024);
  const lazySize =
    [...LAZY_BUNDLES, ...ROLE_BUNDLES].reduce(
      (sum, { asset }) => sum + statSync(join(dist, asset)).size,
      0,
    ) /
    (1024 * 1024);
  console.error(
    `build-binary: ${output} (${size.toFixed(1)} MiB, main bundle ${bundleSize.toFixed(2)} MiB, lazy bundles ${lazySize.toFixed(2)} MiB, Node ${process.versions.node}) in ${((performance.now() - started) / 1000).toFixed(1)}s`,
  );
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
