// Byte-exact golden files under test/golden/data. UPDATE_GOLDEN=1 rewrites them; the diff is
// then reviewed like code.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const goldenRoot = join(__dirname, '..', 'golden', 'data');

export function expectGolden(name: string, actual: string): void {
  const path = join(goldenRoot, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) {
    throw new Error(`golden file ${path} is missing: run with UPDATE_GOLDEN=1 to create it`);
  }
  expect(actual).toBe(readFileSync(path, 'utf8'));
}
