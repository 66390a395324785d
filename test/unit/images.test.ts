// The Dockerfiles under images/ agree with the code that depends on them: the entrypoint the
// test node's image table runs, the module paths the agent loads, the uid the pod specs run as,
// the image names the manifests reference and the build scripts the READMEs name. Nothing here
// builds an image; the Dockerfiles are read as text, so a drift fails before anyone builds.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  CONTROLLER_IMAGE_NAME,
  DEFAULT_REGISTRY_SERVER,
  INIT_IMAGE_NAME,
  SIDECAR_IMAGE_NAME,
  SIDECAR_UID,
} from '../../src/manifests/constants';
import { agentRole } from '../../src/runtime/agent/agent-role';
import { DEFAULT_MODULES } from '../../src/runtime/agent/start-agent';
import { imageTable } from '../cluster/node/images';

const root = join(__dirname, '..', '..');
const IMAGE_PREFIX = 'nginx-mesh-';
const IMAGE_NAMES = [CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, SIDECAR_IMAGE_NAME];

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

/** The Dockerfile of one image: images/<name without nginx-mesh->/Dockerfile. */
function dockerfilePath(imageName: string): string {
  return join(root, 'images', imageName.slice(IMAGE_PREFIX.length), 'Dockerfile');
}

function readImage(imageName: string): { stages: Stage[]; global: Instruction[] } {
  const instructions = parseDockerfile(readFileSync(dockerfilePath(imageName), 'utf8'));
  const firstFrom = instructions.findIndex((each) => each.keyword === 'FROM');
  return { stages: splitStages(instructions), global: instructions.slice(0, firstFrom) };
}

function finalStage(imageName: string): Stage {
  const stage = readImage(imageName).stages.at(-1);
  if (stage === undefined) throw new Error(`${dockerfilePath(imageName)} has no FROM`);
  return stage;
}

function stageNamed(imageName: string, name: string): Stage {
  const stage = readImage(imageName).stages.find((each) => each.name === name);
  if (stage === undefined) throw new Error(`${dockerfilePath(imageName)} has no stage ${name}`);
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

/** What the test node runs for an image reference, from its image table. */
function nodeEntrypoint(imageName: string): readonly string[] | undefined {
  const reference = `${DEFAULT_REGISTRY_SERVER}/${imageName}:0.1.0`;
  const table = imageTable({
    meshctl: '/build/nginx-meshctl',
    node: '/build/node',
    echoServer: '/build/echo-server.js',
    natsServer: '/usr/bin/nats-server',
    nginxModules: DEFAULT_MODULES,
  });
  return table.find((rule) => rule.pattern.test(reference))?.program.entrypoint;
}

const MODULES = DEFAULT_MODULES.split(',');
const BINARY_SOURCE = `/src/${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['nginx-meshctl']}`;

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
  it('has a Dockerfile for every image the manifests and the injector name, and no other', () => {
    const directories = readdirSync(join(root, 'images'), { withFileTypes: true })
      .filter((entry) => existsSync(join(root, 'images', entry.name, 'Dockerfile')))
      .map((entry) => `${IMAGE_PREFIX}${entry.name}`)
      .sort();
    expect(directories).toEqual([...IMAGE_NAMES].sort());
  });

  it('keeps everything git ignores, and the git history, out of the build context', () => {
    const patterns = (file: string): string[] =>
      readFileSync(join(root, file), 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
    const ignored = patterns('.dockerignore');
    for (const pattern of [...patterns('.gitignore'), '.git']) expect(ignored).toContain(pattern);
  });
});

describe.each(IMAGE_NAMES)('image %s', (imageName) => {
  it('is titled with its name', () => {
    expect(label(finalStage(imageName), 'org.opencontainers.image.title')).toBe(imageName);
  });

  it('has the entrypoint the test node runs for it', () => {
    const entrypoint = JSON.parse(only(finalStage(imageName), 'ENTRYPOINT')) as unknown;
    expect(nodeEntrypoint(imageName)).toEqual(entrypoint);
    expect(all(finalStage(imageName), 'CMD')).toEqual([]);
  });

  it('copies the built executable to the entrypoint path, and nothing else from that stage', () => {
    const entrypoint = JSON.parse(only(finalStage(imageName), 'ENTRYPOINT')) as string[];
    expect(copiesFrom(finalStage(imageName), 'binary')).toEqual([
      { source: BINARY_SOURCE, destination: entrypoint[0] },
    ]);
  });

  it('builds the executable with the project build script on the pinned Node', () => {
    const binary = stageNamed(imageName, 'binary');
    expect(all(binary, 'RUN').some((args) => /\bnpm ci\b/.test(args))).toBe(true);
    expect(all(binary, 'RUN').at(-1)).toMatch(/\bnode scripts\/build-binary\.mjs$/);
    expect(all(binary, 'WORKDIR')).toEqual([dirname(dirname(BINARY_SOURCE))]);
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain('`scripts/build-binary.mjs`');
  });

  it('builds on Debian 12 and runs on Debian 12 slim', () => {
    const { global, stages } = readImage(imageName);
    expect(global.map((each) => each.args)).toEqual([
      'BUILD_IMAGE=debian:12',
      'RUNTIME_IMAGE=debian:12-slim',
    ]);
    expect(stages.at(-1)?.from).toBe('${RUNTIME_IMAGE}');
    for (const stage of stages.slice(0, -1)) expect(stage.from).toBe('${BUILD_IMAGE}');
  });
});

describe('the uid the pods run as', () => {
  it.each([CONTROLLER_IMAGE_NAME, SIDECAR_IMAGE_NAME])(
    '%s creates user and group SIDECAR_UID and runs as them',
    (imageName) => {
      const stage = finalStage(imageName);
      const runs = all(stage, 'RUN').join('\n');
      expect(runs).toMatch(new RegExp(`groupadd .*--gid ${SIDECAR_UID}\\b`));
      expect(runs).toMatch(new RegExp(`useradd .*--uid ${SIDECAR_UID} --gid ${SIDECAR_UID}\\b`));
      expect(all(stage, 'USER')).toEqual([`${SIDECAR_UID}:${SIDECAR_UID}`]);
    },
  );

  it('leaves the init image as root, which iptables needs', () => {
    expect(all(finalStage(INIT_IMAGE_NAME), 'USER')).toEqual([]);
    expect(all(finalStage(INIT_IMAGE_NAME), 'RUN').join('\n')).toMatch(
      /apt-get install .*\biptables\b/,
    );
  });
});

describe('the sidecar image', () => {
  const stage = finalStage(SIDECAR_IMAGE_NAME);
  const nginxDefault = agentRole.flags?.find((flag) => flag.long === 'nginx')?.defaultValue;

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

  it("checks at build time that the agent's nginx loads the agent's modules in order", () => {
    const check = all(stage, 'RUN').find((args) => args.includes('nginx -t'));
    expect(check).toBeDefined();
    expect(check).toContain(`printf 'load_module %s;\\n' ${MODULES.join(' ')} `);
    expect(check).toContain(`${String(nginxDefault)} -t`);
    expect(nginxDefault).toBe('/usr/sbin/nginx');
  });

  it('builds the module with the script its README names, from the module sources', () => {
    const readme = readFileSync(join(root, 'images/sidecar/ngx_mesh/README.md'), 'utf8');
    const script = /## Build\s+`(scripts\/[\w.-]+\.sh)`/.exec(readme)?.[1];
    expect(script).toBe('scripts/build-ngx-mesh.sh');
    const module = stageNamed(SIDECAR_IMAGE_NAME, 'module');
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
