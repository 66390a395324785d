// The mesh as an earlier commit built it: its controller, init and sidecar images under a tag of
// their own, and its executable, so a test can deploy the earlier mesh and upgrade it to the one
// built here. They are built once per commit, from a checkout of that commit in a temporary git
// worktree, with the commit's own scripts/build-images.sh, and cached under
// <cache>/previous/<commit>/ (the executable is taken out of the controller image, where the
// image build put it, so nothing runs npm on the host).
import { execa } from 'execa';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../harness/cluster';
import type { ImageArchive } from '../harness/node';
import { importNodeImages } from './node-access';

/** The mesh images an earlier commit's mesh runs on. */
const MESH_IMAGES = ['controller', 'init', 'sidecar'] as const;
/** Bounds the image build of one commit (cold: the executable and the module are built). */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const EXECUTABLE = 'usr/bin/nginx-meshctl';
/** Commits whose images stay cached (the most recently used): each takes some 750 MB. */
const KEEP_COMMITS = 2;

export interface PreviousMesh {
  /** The full commit hash. */
  readonly commit: string;
  /** The tag its images carry (deploy's --image-tag). */
  readonly tag: string;
  readonly images: readonly ImageArchive[];
  /** Its nginx-meshctl. */
  readonly binary: string;
  /** Whether this call built them (false: found in the cache). */
  readonly built: boolean;
}

interface CacheRecord {
  readonly commit: string;
  readonly tag: string;
  readonly images: readonly ImageArchive[];
}

async function git(root: string, args: readonly string[]): Promise<string> {
  const result = await execa('git', ['-C', root, ...args], { timeout: 60_000 });
  return result.stdout.trim();
}

/** The docker-archive's layers, last first: the executable comes from the newest that has it. */
async function extractExecutable(archive: string, outDir: string): Promise<string> {
  const manifest = JSON.parse(
    (await execa('tar', ['-xOf', archive, 'manifest.json'], { timeout: 60_000 })).stdout,
  ) as { Layers: string[] }[];
  const layers = [...(manifest[0]?.Layers ?? [])].reverse();
  for (const layer of layers) {
    const extracted = await execa(
      'bash',
      [
        '-c',
        'tar -xOf "$1" "$2" | tar -x -C "$3" "$4" 2>/dev/null',
        '_',
        archive,
        layer,
        outDir,
        EXECUTABLE,
      ],
      { reject: false, timeout: 120_000 },
    );
    if (extracted.exitCode === 0 && existsSync(join(outDir, EXECUTABLE)))
      return join(outDir, EXECUTABLE);
  }
  throw new Error(`no ${EXECUTABLE} in any layer of ${archive}`);
}

/** Builds the images of commit into dir (a worktree of it lives there during the build). */
async function buildPrevious(root: string, commit: string, tag: string, dir: string) {
  const worktree = join(dir, 'src');
  rmSync(worktree, { recursive: true, force: true });
  await git(root, ['worktree', 'prune']);
  await git(root, ['worktree', 'add', '--detach', worktree, commit]);
  // Build scripts run host-side steps on the pinned Node and its packages (the Gateway API CRDs'
  // conversion): the worktree borrows this checkout's, which npm ci installed.
  symlinkSync(join(root, 'node_modules'), join(worktree, 'node_modules'));
  try {
    const built = await execa(
      'bash',
      [
        join(worktree, 'scripts', 'build-images.sh'),
        ...['--tag', tag, '--archive-dir', join(dir, 'archives')],
        ...MESH_IMAGES,
      ],
      { cwd: worktree, reject: false, timeout: BUILD_TIMEOUT_MS, stderr: 'pipe' },
    );
    if (built.exitCode !== 0)
      throw new Error(
        `building the images of ${commit} failed (exit ${String(built.exitCode)}):\n${String(built.stderr).slice(-3000)}`,
      );
    return String(built.stdout)
      .split('\n')
      .filter((line) => line.includes('\t'))
      .map((line) => {
        const [ref = '', path = ''] = line.split('\t');
        return { ref, path };
      });
  } finally {
    await git(root, ['worktree', 'remove', '--force', worktree]).catch(() => undefined);
  }
}

/** Removes the cached commits but the KEEP_COMMITS most recently used (images.json's time). */
function pruneCache(root: string): void {
  const used = (dir: string): number => {
    try {
      return statSync(join(root, dir, 'images.json')).mtimeMs;
    } catch {
      return 0;
    }
  };
  const dirs = readdirSync(root).sort((a, b) => used(b) - used(a));
  for (const dir of dirs.slice(KEEP_COMMITS))
    rmSync(join(root, dir), { recursive: true, force: true });
}

/**
 * The mesh of the commit `ref` names (default HEAD~1, or NMK_FAULTS_PREVIOUS_REF), built or
 * found in the cache.
 */
export async function previousMesh(
  root: string,
  ref = process.env.NMK_FAULTS_PREVIOUS_REF ?? 'HEAD~1',
): Promise<PreviousMesh> {
  const commit = await git(root, ['rev-parse', '--verify', `${ref}^{commit}`]);
  const version = (
    JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const tag = `${version}-${commit.slice(0, 12)}`;
  const cache = join(cacheRoot(), 'previous');
  const dir = join(cache, commit);
  const recordPath = join(dir, 'images.json');
  const binary = join(dir, EXECUTABLE);
  if (existsSync(recordPath) && existsSync(binary)) {
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as CacheRecord;
    if (record.images.every((image) => existsSync(image.path))) {
      const now = new Date();
      utimesSync(recordPath, now, now);
      pruneCache(cache);
      return { ...record, binary, built: false };
    }
  }
  mkdirSync(dir, { recursive: true });
  const images = await buildPrevious(root, commit, tag, dir);
  const controller = images.find((image) => image.ref.includes('/nginx-mesh-controller:'));
  if (images.length !== MESH_IMAGES.length || controller === undefined)
    throw new Error(`the image build of ${commit} listed ${images.length} archives`);
  await extractExecutable(controller.path, dir);
  const record: CacheRecord = { commit, tag, images };
  writeFileSync(recordPath, `${JSON.stringify(record, null, 2)}\n`);
  pruneCache(cache);
  return { ...record, binary, built: true };
}

/** Imports the earlier mesh's images into the test node's containerd. */
export async function importPreviousMesh(mesh: PreviousMesh): Promise<void> {
  await importNodeImages(mesh.images.map((image) => image.path));
}
