// The built executable, copied alone into an empty directory, as a user would run it.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const builtBinary = join(__dirname, '..', '..', 'dist', 'nginx-meshctl');

export interface IsolatedBinary {
  readonly dir: string;
  readonly path: string;
  remove(): void;
}

export function isolateBinary(): IsolatedBinary {
  if (!existsSync(builtBinary)) {
    throw new Error(`${builtBinary} is missing: run "npm run build:binary" first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'nginx-meshctl-'));
  const path = join(dir, 'nginx-meshctl');
  copyFileSync(builtBinary, path);
  return { dir, path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
