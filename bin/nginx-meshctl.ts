// Composition root: the real dependencies, the process's argv, and its exit code.
import { homedir } from 'node:os';
import { main } from '../src/main';
import { systemClock } from '../src/runtime/clock';
import { createKubeAccess } from '../src/runtime/kube/access';
import { roleRegistry } from '../src/runtime/roles';
import { processSignals } from '../src/runtime/signals';
import { processIo, processPrompter } from './process-io';

// Stamped by scripts/build-binary.mjs; absent when run from source.
declare const __NGINX_MESHCTL_VERSION__: string | undefined;
declare const __NGINX_MESHCTL_COMMIT__: string | undefined;

function safeHome(): string {
  try {
    return homedir();
  } catch {
    return '/root';
  }
}

async function start(): Promise<void> {
  const code = await main(process.argv.slice(2), {
    io: processIo(process.env),
    env: process.env,
    homeDir: safeHome(),
    build: {
      version: typeof __NGINX_MESHCTL_VERSION__ === 'string' ? __NGINX_MESHCTL_VERSION__ : '0.0.0',
      commit: typeof __NGINX_MESHCTL_COMMIT__ === 'string' ? __NGINX_MESHCTL_COMMIT__ : 'local',
    },
    kube: createKubeAccess(process.env),
    roles: roleRegistry,
    signals: processSignals(process),
    clock: systemClock,
    prompt: processPrompter(),
    input: {
      // node:fs/promises pulls in readline and file watchers: loaded only when a file is read.
      readFile: async (path) => (await import('node:fs/promises')).readFile(path, 'utf8'),
      readStdin: async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks).toString('utf8');
      },
      readUrl: async (url, maxBytes) =>
        (await import('../src/runtime/fetch-text')).fetchText(url, { maxBytes }),
    },
  });
  // Exit now rather than when the event loop drains: keep-alive sockets and abandoned role
  // work must not hold the process open. stdout and stderr are synchronous for files and pipes.
  process.exit(code);
}

void start();
