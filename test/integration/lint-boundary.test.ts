// The lint configuration is part of the architecture: it keeps pure code pure. ESLint runs as
// the project runs it, in a separate process on the real configuration.
import { join } from 'node:path';
import { execa } from 'execa';

const root = join(__dirname, '..', '..');

interface Probe {
  readonly name: string;
  readonly code: string;
  readonly file: string;
  /** Rules that must report; empty means the snippet must be clean. */
  readonly rules: readonly string[];
}

const probes: readonly Probe[] = [
  {
    name: 'node:fs in src/render',
    code: "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    file: 'src/render/help.ts',
    rules: ['no-restricted-imports'],
  },
  {
    name: 'os in src/manifests',
    code: "import * as os from 'os';\nexport const x = os;\n",
    file: 'src/manifests/duration.ts',
    rules: ['no-restricted-imports'],
  },
  {
    name: 'src/runtime from src/render',
    code: "import { systemClock } from '../runtime/clock';\nexport const x = systemClock;\n",
    file: 'src/render/help.ts',
    rules: ['no-restricted-imports'],
  },
  {
    name: 'Date.now() in src/render',
    code: 'export const now = (): number => Date.now();\n',
    file: 'src/render/help.ts',
    rules: ['no-restricted-syntax'],
  },
  {
    name: 'new Date() in src/manifests',
    code: 'export const now = (): Date => new Date();\n',
    file: 'src/manifests/duration.ts',
    rules: ['no-restricted-syntax'],
  },
  {
    name: 'Math.random() in src/render',
    code: 'export const id = (): number => Math.random();\n',
    file: 'src/render/help.ts',
    rules: ['no-restricted-syntax'],
  },
  {
    name: 'process.env in src/render',
    code: 'export const env = (): unknown => process.env;\n',
    file: 'src/render/help.ts',
    rules: ['no-restricted-globals'],
  },
  {
    name: 'pure code that takes time as a parameter',
    code: 'export const age = (now: Date, then: Date): number => now.getTime() - then.getTime();\n',
    file: 'src/render/help.ts',
    rules: [],
  },
  {
    name: 'process.exit and process.stdout in a command',
    code: "export function f(): void {\n  process.stdout.write('x');\n  process.exit(1);\n}\n",
    file: 'src/commands/version/index.ts',
    rules: ['no-restricted-properties'],
  },
  {
    name: 'a floating promise',
    code: 'export async function f(): Promise<void> {}\nexport function g(): void {\n  f();\n}\n',
    file: 'src/commands/version/index.ts',
    rules: ['@typescript-eslint/no-floating-promises'],
  },
];

let reports: string[][];

beforeAll(async () => {
  const { stdout } = await execa(
    join(root, 'node_modules', '.bin', 'node'),
    [join(root, 'test', 'support', 'lint-probe.mjs')],
    {
      cwd: root,
      input: JSON.stringify(probes.map((p) => ({ code: p.code, filePath: join(root, p.file) }))),
    },
  );
  reports = JSON.parse(stdout) as string[][];
}, 120_000);

describe('lint boundaries', () => {
  it.each(probes.map((probe, index) => [probe.name, probe, index] as const))(
    '%s',
    (_name, probe, index) => {
      const found = reports[index] ?? [];
      if (probe.rules.length === 0) {
        expect(found).toEqual([]);
        return;
      }
      for (const rule of probe.rules) {
        expect(found.some((line) => line.startsWith(`${rule}:`))).toBe(true);
      }
    },
  );
});
