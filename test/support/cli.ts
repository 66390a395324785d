// Runs the whole CLI in-process with fakes, the way the executable runs it with real parts.
import { main } from '../../src/main';
import type { MainDeps } from '../../src/main';
import type { InputReader } from '../../src/commands/inject/run-inject';
import type { KubeAccess } from '../../src/runtime/kube/access';
import type { RoleDefinition } from '../../src/runtime/role/role';
import type { BufferedIo } from './fakes';
import { createBufferedIo, createManualSignals, fixedClock, readOnlyKube } from './fakes';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A kube access that must not be used: tests that need one pass their own. */
export const unreachableKube: KubeAccess = readOnlyKube(() =>
  Promise.reject(new Error('dial tcp 127.0.0.1:1: connect: connection refused')),
);

export interface CliOverrides extends Partial<Omit<MainDeps, 'io' | 'roles' | 'input'>> {
  readonly io?: BufferedIo;
  /** Replaces the default readers one by one: none reads a real file or URL. */
  readonly input?: Partial<InputReader>;
  readonly roles?: readonly RoleDefinition[];
}

export async function runCli(
  argv: readonly string[],
  overrides: CliOverrides = {},
): Promise<CliResult> {
  const io = overrides.io ?? createBufferedIo();
  const code = await main(argv, {
    env: {},
    homeDir: '/home/user',
    build: { version: '1.2.3', commit: 'abc1234' },
    kube: unreachableKube,
    signals: createManualSignals(),
    clock: fixedClock(),
    prompt: {
      interactive: false,
      ask: () => Promise.reject(new Error('no terminal: nothing can be asked')),
    },
    ...overrides,
    input: {
      readFile: (path) => Promise.reject(new Error(`open ${path}: no such file or directory`)),
      readStdin: () => Promise.resolve(''),
      readUrl: (url) => Promise.reject(new Error(`GET ${url}: no network in this test`)),
      ...overrides.input,
    },
    io,
    roles: new Map((overrides.roles ?? []).map((role) => [role.name, role])),
  });
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}
