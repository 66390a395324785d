// The Dockerfiles under images/ agree with the code that depends on them and with each other:
// the executable's path and entrypoint, the common base the mesh images share, the module paths
// the agent loads, the uid the pod specs run as, the image names the manifests reference, the
// image list of scripts/build-images.sh and the build scripts the READMEs name. Nothing here
// builds an image; the Dockerfiles are read as text, so a drift fails before anyone builds.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import {
  CONTROLLER_IMAGE_NAME,
  INIT_IMAGE_NAME,
  NATS_IMAGE,
  SIDECAR_IMAGE_NAME,
  SIDECAR_UID,
} from '../../src/manifests/constants';
import { agentRole } from '../../src/runtime/agent/agent-role';
import { DEFAULT_MODULES } from '../../src/runtime/agent/start-agent';
import {
  ECHO_BANNER_PORT,
  ECHO_GRPC_PORT,
  ECHO_HTTP_PORT,
  ECHO_TCP_PORT,
  ECHO_UDP_PORT,
} from '../cluster/apps/echo-ports';

const root = join(__dirname, '..', '..');
const IMAGE_PREFIX = 'nginx-mesh-';
const MESH_IMAGES = [CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, SIDECAR_IMAGE_NAME];

/** One Dockerfile instruction: the keyword upper-cased, and its arguments on one line. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** A build stage: its FROM arguments, its name (`AS name`) and its instructions after FROM. */
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

interface Dockerfile {
  /** The instructions before the first FROM (the global ARGs). */
  readonly global: readonly Instruction[];
  readonly stages: readonly Stage[];
}

/**
 * Minimal Dockerfile reader: comment and empty lines are dropped (also inside a continuation, as
 * Docker does), a line ending in `\` continues on the next one, every other line is one
 * instruction.
 */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    const continued = line.endsWith('\\');
    pending += `${continued ? line.slice(0, -1).trimEnd() : line} `;
    if (continued) continue;
    const match = /^(\S+)\s*(.*)$/s.exec(pending.trim());
    if (match?.[1] !== undefined) {
      instructions.push({ keyword: match[1].toUpperCase(), args: (match[2] ?? '').trim() });
    }
    pending = '';
  }
  if (pending.trim() !== '') throw new Error(`Dockerfile ends inside a continuation: ${pending}`);
  return instructions;
}

function splitStages(instructions: readonly Instruction[]): Stage[] {
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (match?.[1] === undefined) throw new Error(`unreadable FROM ${instruction.args}`);
      stages.push({ from: match[1], name: match[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** images/<directory>/Dockerfile, read and split into stages. */
function readDockerfile(directory: string): Dockerfile {
  const instructions = parseDockerfile(
    readFileSync(join(root, 'images', directory, 'Dockerfile'), 'utf8'),
  );
  const firstFrom = instructions.findIndex((each) => each.keyword === 'FROM');
  return { stages: splitStages(instructions), global: instructions.slice(0, firstFrom) };
}

/** The directory of a mesh image: images/<name without nginx-mesh->. */
function meshDirectory(imageName: string): string {
  return imageName.slice(IMAGE_PREFIX.length);
}

function finalStage(directory: string): Stage {
  const stage = readDockerfile(directory).stages.at(-1);
  if (stage === undefined) throw new Error(`images/${directory}/Dockerfile has no FROM`);
  return stage;
}

function stageNamed(directory: string, name: string): Stage {
  const stage = readDockerfile(directory).stages.find((each) => each.name === name);
  if (stage === undefined) throw new Error(`images/${directory}/Dockerfile has no stage ${name}`);
  return stage;
}

function all(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((each) => each.keyword === keyword).map((each) => each.args);
}

function only(stage: Stage, keyword: string): string {
  const found = all(stage, keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword}, found ${found.length}`);
  return found[0] ?? '';
}

function globalArgs(directory: string): string[] {
  return readDockerfile(directory).global.map((each) => each.args);
}

/** `COPY --from=<stage> <source> <destination>` instructions of a stage. */
function copiesFrom(stage: Stage, from: string): { source: string; destination: string }[] {
  return all(stage, 'COPY').flatMap((args) => {
    const match = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(args);
    return match?.[1] === from && match[2] !== undefined && match[3] !== undefined
      ? [{ source: match[2], destination: match[3] }]
      : [];
  });
}

function label(stage: Stage, key: string): string | undefined {
  const text = all(stage, 'LABEL').join(' ');
  return new RegExp(`(?:^|\\s)${key.replace(/\./g, '\\.')}="([^"]*)"`).exec(text)?.[1];
}

function entrypoint(stage: Stage): unknown {
  return JSON.parse(only(stage, 'ENTRYPOINT')) as unknown;
}

/** Every directory under images/ that holds a Dockerfile, relative to images/. */
function dockerfileDirectories(directory = ''): string[] {
  const here = join(root, 'images', directory);
  return readdirSync(here, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      const child = directory === '' ? entry.name : `${directory}/${entry.name}`;
      const nested = dockerfileDirectories(child);
      return existsSync(join(here, entry.name, 'Dockerfile')) ? [child, ...nested] : nested;
    });
}

/** A shell array assignment of scripts/build-images.sh, e.g. ALL_NAMES=(a b c). */
function scriptArray(name: string): string[] {
  const script = readFileSync(join(root, 'scripts/build-images.sh'), 'utf8');
  const body = new RegExp(`^${name}=\\(([^)]*)\\)$`, 'm').exec(script)?.[1];
  if (body === undefined) throw new Error(`scripts/build-images.sh has no ${name}=(…)`);
  return body.split(/\s+/).filter((each) => each !== '');
}

function scriptValue(name: string): string {
  const script = readFileSync(join(root, 'scripts/build-images.sh'), 'utf8');
  const value = new RegExp(`^${name}="([^"]*)"$`, 'm').exec(script)?.[1];
  if (value === undefined) throw new Error(`scripts/build-images.sh has no ${name}="…"`);
  return value;
}

/** The images whose Dockerfiles live under images/test/: the tests' apps. */
const TEST_IMAGES = ['echo-server', 'client', ...scriptArray('CONFORMANCE_NAMES')];
const MODULES = DEFAULT_MODULES.split(',');
const BINARY_SOURCE = `/src/${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['nginx-meshctl']}`;
const BASE = finalStage('base');
/** Where the common base puts the executable: every mesh image's entrypoint. */
const EXECUTABLE = copiesFrom(BASE, 'binary')[0]?.destination;
/** Images built on debian:12-slim with the shared dependency stage "deps". */
const DEPS_USERS = ['base', 'test/echo-server', 'test/client'];
/** What a runtime stage must not install: compilers and the build's Node and npm. */
const BUILD_TOOLS = /\b(gcc|g\+\+|make|libc6-dev|nginx-dev|nodejs|npm|binutils)\b/;

describe('the Dockerfile reader', () => {
  it('joins continued lines, drops comments inside them and splits stages', () => {
    const text = [
      '# header',
      'ARG BASE=debian:12',
      'FROM ${BASE} AS build',
      'RUN one \\',
      '# a comment inside the continuation',
      ' && two',
      '',
      'from debian:12-slim',
      'ENTRYPOINT ["/x"]',
    ].join('\n');
    const instructions = parseDockerfile(text);
    expect(instructions.map((each) => each.keyword)).toEqual([
      'ARG',
      'FROM',
      'RUN',
      'FROM',
      'ENTRYPOINT',
    ]);
    expect(instructions[2]?.args).toBe('one && two');
    const stages = splitStages(instructions);
    expect(stages.map((stage) => [stage.from, stage.name])).toEqual([
      ['${BASE}', 'build'],
      ['debian:12-slim', undefined],
    ]);
  });

  it('refuses a file that ends inside a continuation', () => {
    expect(() => parseDockerfile('RUN a \\\n')).toThrow('ends inside a continuation');
  });
});

describe('images/', () => {
  it('has a Dockerfile for each image scripts/build-images.sh builds, the common base, and no other', () => {
    const built = scriptArray('ALL_NAMES').map((name) =>
      TEST_IMAGES.includes(name) ? `test/${name}` : name,
    );
    expect(dockerfileDirectories().sort()).toEqual(['base', ...built].sort());
  });

  it('builds every image the manifests and the injector name', () => {
    expect(scriptArray('MESH_NAMES')).toEqual(MESH_IMAGES.map(meshDirectory));
    for (const imageName of MESH_IMAGES) {
      expect(existsSync(join(root, 'images', meshDirectory(imageName), 'Dockerfile'))).toBe(true);
    }
  });

  it('keeps everything git ignores, and the git history, out of the build context, but the embedded Gateway API CRDs', () => {
    const patterns = (file: string): string[] =>
      readFileSync(join(root, file), 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
    const ignored = patterns('.dockerignore');
    const embedded = 'src/manifests/gateway-api/crds.generated.json';
    for (const pattern of [...patterns('.gitignore'), '.git']) expect(ignored).toContain(pattern);
    // The one exception, the last word on its path: the executable the images build embeds it.
    expect(ignored.filter((pattern) => pattern.startsWith('!'))).toEqual([`!${embedded}`]);
    expect(ignored.indexOf(`!${embedded}`)).toBeGreaterThan(ignored.indexOf(embedded));
  });

  it.each(dockerfileDirectories())(
    '%s installs no build tools in its runtime stage and keeps no apt lists',
    (directory) => {
      const runs = all(finalStage(directory), 'RUN');
      for (const run of runs.filter((each) => each.includes('apt-get install'))) {
        expect(run).not.toMatch(BUILD_TOOLS);
        expect(run).toContain('rm -rf /var/lib/apt/lists/*');
      }
    },
  );
});

describe('the dependency stage "deps"', () => {
  const text = (directory: string): string => JSON.stringify(stageNamed(directory, 'deps'));

  it.each(DEPS_USERS)(
    'is the same in %s, so a layer cache runs npm ci once per lock file',
    (directory) => {
      expect(text(directory)).toBe(text('base'));
      expect(globalArgs(directory)).toEqual([
        'BUILD_IMAGE=debian:12',
        'RUNTIME_IMAGE=debian:12-slim',
      ]);
      expect(stageNamed(directory, 'deps').from).toBe('${BUILD_IMAGE}');
      expect(finalStage(directory).from).toBe('${RUNTIME_IMAGE}');
    },
  );

  it('installs the locked dependencies trusting the CA bundle passed as the secret "ca"', () => {
    const deps = stageNamed('base', 'deps');
    expect(all(deps, 'COPY')).toEqual(['package.json package-lock.json ./']);
    expect(all(deps, 'RUN').at(-1)).toMatch(
      /^--mount=type=secret,id=ca NODE_EXTRA_CA_CERTS=\/run\/secrets\/ca npm ci\b/,
    );
    expect(all(deps, 'WORKDIR')).toEqual([dirname(dirname(BINARY_SOURCE))]);
  });
});

describe('the common base of the mesh images', () => {
  it('builds the executable with the project build script on the pinned Node', () => {
    const binary = stageNamed('base', 'binary');
    expect(binary.from).toBe('deps');
    expect(all(binary, 'RUN').at(-1)).toMatch(/\bnode scripts\/build-binary\.mjs$/);
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain('`scripts/build-binary.mjs`');
  });

  it('copies the built executable to /usr/bin, its entrypoint, and nothing else from that stage', () => {
    expect(copiesFrom(BASE, 'binary')).toEqual([
      { source: BINARY_SOURCE, destination: '/usr/bin/nginx-meshctl' },
    ]);
    expect(entrypoint(BASE)).toEqual([EXECUTABLE]);
  });

  it('creates user and group SIDECAR_UID, and stays root for the images built on it', () => {
    const runs = all(BASE, 'RUN').join('\n');
    expect(runs).toMatch(new RegExp(`groupadd .*--gid ${SIDECAR_UID}\\b`));
    expect(runs).toMatch(new RegExp(`useradd .*--uid ${SIDECAR_UID} --gid ${SIDECAR_UID}\\b`));
    expect(all(BASE, 'USER')).toEqual([]);
  });
});

describe.each(MESH_IMAGES)('image %s', (imageName) => {
  const directory = meshDirectory(imageName);
  const stage = finalStage(directory);

  it('is titled with its name', () => {
    expect(label(stage, 'org.opencontainers.image.title')).toBe(imageName);
  });

  it('builds on the common base, so the executable is one layer for all three', () => {
    expect(globalArgs(directory)).toContain('BASE_IMAGE=localhost/nginx-mesh-base:latest');
    expect(stage.from).toBe('${BASE_IMAGE}');
    expect(all(stage, 'COPY').filter((args) => args.includes(BINARY_SOURCE))).toEqual([]);
  });

  it("runs the base's executable, with no default arguments", () => {
    expect(entrypoint(stage)).toEqual([EXECUTABLE]);
    expect(all(stage, 'CMD')).toEqual([]);
  });
});

describe('the uid the pods run as', () => {
  it.each([CONTROLLER_IMAGE_NAME, SIDECAR_IMAGE_NAME])('%s runs as SIDECAR_UID', (imageName) => {
    expect(all(finalStage(meshDirectory(imageName)), 'USER')).toEqual([
      `${SIDECAR_UID}:${SIDECAR_UID}`,
    ]);
  });

  it('leaves the init image as root, which iptables needs', () => {
    const stage = finalStage(meshDirectory(INIT_IMAGE_NAME));
    expect(all(stage, 'USER')).toEqual([]);
    expect(all(stage, 'RUN').join('\n')).toMatch(/apt-get install .*\biptables\b/);
  });
});

describe('the sidecar image', () => {
  const directory = meshDirectory(SIDECAR_IMAGE_NAME);
  const stage = finalStage(directory);
  const nginxDefault = agentRole.flags?.find((flag) => flag.long === 'nginx')?.defaultValue;
  const runDir = agentRole.flags?.find((flag) => flag.long === 'run-dir')?.defaultValue;

  it("puts ngx_mesh where the agent loads it by default, next to Debian's stream module", () => {
    expect(MODULES).toHaveLength(2);
    expect(copiesFrom(stage, 'module')).toContainEqual({
      source: '/out/ngx_mesh_module.so',
      destination: MODULES[1],
    });
    expect(MODULES[0]).toBe(`${dirname(MODULES[1] ?? '')}/ngx_stream_module.so`);
    expect(all(stage, 'RUN').join('\n')).toMatch(
      /apt-get install .*"nginx=\$version" "libnginx-mod-stream=\$version"/,
    );
  });

  it("checks at build time, as the pods' uid, that the agent's nginx loads the agent's modules in order", () => {
    const runs = all(stage, 'RUN');
    const check = runs.find((args) => args.includes('nginx -t'));
    expect(check).toBeDefined();
    expect(check).toContain(`printf 'load_module %s;\\n' ${MODULES.join(' ')} `);
    expect(check).toContain(`${String(nginxDefault)} -t -q -e stderr `);
    expect(nginxDefault).toBe('/usr/sbin/nginx');
    const afterUser = stage.instructions.slice(
      stage.instructions.findIndex((each) => each.keyword === 'USER'),
    );
    expect(afterUser.map((each) => each.args)).toContain(check);
  });

  it("gives the agent's default run dir to the pods' uid", () => {
    expect(runDir).toBe('/etc/nginx-mesh');
    expect(all(stage, 'RUN').join('\n')).toContain(
      `install -d -o ${SIDECAR_UID} -g ${SIDECAR_UID} -m 0700 ${String(runDir)}`,
    );
  });

  it('builds the module with the script its README names, from the module sources', () => {
    const readme = readFileSync(join(root, 'images/sidecar/ngx_mesh/README.md'), 'utf8');
    const script = /## Build\s+`(scripts\/[\w.-]+\.sh)`/.exec(readme)?.[1];
    expect(script).toBe('scripts/build-ngx-mesh.sh');
    const module = stageNamed(directory, 'module');
    expect(module.from).toBe('${BUILD_IMAGE}');
    expect(all(module, 'COPY')).toEqual([
      `${String(script)} scripts/`,
      'images/sidecar/ngx_mesh images/sidecar/ngx_mesh',
    ]);
    expect(all(module, 'RUN').at(-1)).toMatch(
      new RegExp(`^NGX_MESH_OUT=/out ${String(script).replace(/\./g, '\\.')} &&`),
    );
    expect(all(module, 'RUN').join('\n')).toMatch(
      /apt-get install .*\bnginx libnginx-mod-stream nginx-dev\b/,
    );
  });
});

describe('the images the tests and the node need', () => {
  it("nats runs Debian's nats-server 2.9 as the upstream image does, under the tag the script gives it", () => {
    const stage = finalStage('nats');
    expect(entrypoint(stage)).toEqual(['/nats-server']);
    const runs = all(stage, 'RUN').join('\n');
    expect(runs).toContain("apt-get install -y --no-install-recommends 'nats-server=2.9.*'");
    expect(runs).toContain('ln -s /usr/sbin/nats-server /nats-server');
    expect(runs).toContain('ln -s /usr/sbin/nats-server /usr/bin/nats-server');
    // The script tags NATS as the mesh names it, so deploy --disable-public-images finds it.
    expect(`nats:${scriptValue('NATS_TAG')}`).toBe(NATS_IMAGE);
  });

  it('echo-server runs the bundle of the test app on the pinned Node, exposing its default ports', () => {
    const source = readFileSync(join(root, 'test/cluster/apps/echo-server.ts'), 'utf8');
    // Each port's default is a constant of echo-ports.ts, named in the source beside its variable.
    const defaults: Record<string, number> = {
      ECHO_HTTP_PORT,
      ECHO_TCP_PORT,
      ECHO_GRPC_PORT,
      ECHO_BANNER_PORT,
      ECHO_UDP_PORT,
    };
    const port = (name: string): string | undefined => {
      const constant = new RegExp(`process\\.env\\.${name} \\?\\? (\\w+)`).exec(source)?.[1];
      return constant === undefined ? undefined : String(defaults[constant]);
    };
    const stage = finalStage('test/echo-server');
    const bundle = stageNamed('test/echo-server', 'bundle');
    const out = /--bundle-only (\S+) (\S+)$/.exec(all(bundle, 'RUN').at(-1) ?? '');
    expect(out?.[1]).toBe(relative(root, join(root, 'test/cluster/apps/echo-server.ts')));
    const copied = copiesFrom(stage, 'bundle').find((copy) => copy.source === out?.[2]);
    expect(copied).toBeDefined();
    expect(entrypoint(stage)).toEqual([
      '/usr/bin/node',
      '--enable-source-maps',
      copied?.destination,
    ]);
    expect(all(stage, 'EXPOSE')).toEqual([
      [
        port('HTTP_PORT'),
        port('TCP_PORT'),
        port('GRPC_PORT'),
        port('BANNER_PORT'),
        `${String(port('UDP_PORT'))}/udp`,
      ].join(' '),
    ]);
    expect(all(stage, 'USER')).not.toContain(`${SIDECAR_UID}:${SIDECAR_UID}`);
  });

  it.each(['test/echo-server', 'test/client'])(
    '%s takes Node from the locked dependencies',
    (directory) => {
      expect(copiesFrom(finalStage(directory), 'deps')).toEqual([
        { source: '/src/node_modules/node/bin/node', destination: '/usr/bin/node' },
      ]);
    },
  );

  it('client has curl and iproute2 and idles until SIGTERM', () => {
    const stage = finalStage('test/client');
    expect(all(stage, 'RUN').join('\n')).toMatch(/apt-get install .*\bcurl iproute2\b/);
    expect(all(stage, 'ENTRYPOINT')).toEqual([]);
    expect(only(stage, 'CMD')).toContain('sleep infinity');
    expect(only(stage, 'CMD')).toContain("trap 'exit 0' TERM");
  });

  it('pause is a static program alone in an empty image, tagged as containerd asks for it', () => {
    const stage = finalStage('pause');
    expect(stage.from).toBe('scratch');
    expect(all(stageNamed('pause', 'build'), 'RUN').join('\n')).toMatch(/\bgcc -static\b/);
    expect(copiesFrom(stage, 'build')).toEqual([{ source: '/out/pause', destination: '/pause' }]);
    expect(entrypoint(stage)).toEqual(['/pause']);
    expect(scriptValue('PAUSE_IMAGE')).toBe('registry.k8s.io/pause:3.10.1');
  });

  it('tags the conformance echo apps with the references the Gateway API suite names', () => {
    expect(scriptArray('CONFORMANCE_NAMES')).toEqual(['echo-basic', 'echo-advanced']);
    expect(scriptValue('CONFORMANCE_ECHO_REGISTRY')).toBe('registry.k8s.io/gateway-api');
    expect(scriptValue('CONFORMANCE_ECHO_TAG')).toBe('v1.5.1');
  });

  it("echo-basic is the suite's static echo server alone in an empty image", () => {
    const stage = finalStage('test/echo-basic');
    expect(stage.from).toBe('scratch');
    expect(all(stage, 'COPY')).toEqual(['echo-basic /echo-basic']);
    expect(entrypoint(stage)).toEqual(['/echo-basic']);
    expect(only(stage, 'USER')).not.toBe(`${SIDECAR_UID}:${SIDECAR_UID}`);
  });

  it('echo-advanced runs the echo server with client on PATH and a certificate at /cert.*', () => {
    const stage = finalStage('test/echo-advanced');
    expect(all(stage, 'COPY')).toEqual(
      expect.arrayContaining([
        'echo-server /usr/local/bin/server',
        'echo-client /usr/local/bin/client',
      ]),
    );
    expect(copiesFrom(stage, 'cert')).toEqual([
      { source: '/cert.crt', destination: '/cert.crt' },
      { source: '/cert.key', destination: '/cert.key' },
    ]);
    expect(all(stageNamed('test/echo-advanced', 'cert'), 'RUN').join('\n')).toMatch(
      /openssl req -x509 .*-keyout \/cert\.key -out \/cert\.crt/,
    );
    expect(entrypoint(stage)).toEqual(['/usr/local/bin/server']);
    expect(only(stage, 'USER')).not.toBe(String(SIDECAR_UID));
  });
});
