// Loads a library that the executable carries as a separate bundle (see
// scripts/build-binary.mjs), compiling it only on first use. Heavy libraries such as
// @kubernetes/client-node cost hundreds of milliseconds to compile; commands that never talk
// to a cluster must not pay for them.
import Module from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as sea from 'node:sea';

const loaded = new Map<string, unknown>();

/** Returns the exports of the named bundle, compiling it once per process. */
export function loadLazyBundle(asset: string): unknown {
  const cached = loaded.get(asset);
  if (cached !== undefined) return cached;
  // Inside the single executable the bundle is an embedded asset; when the plain .cjs bundle
  // is run with node, it sits beside it in dist/.
  const code = sea.isSea()
    ? sea.getAsset(asset, 'utf8')
    : readFileSync(join(__dirname, asset), 'utf8');
  const filename = `/${asset}`;
  const lazyModule = new Module(filename) as Module & {
    _compile(code: string, filename: string): void;
  };
  lazyModule.filename = filename;
  lazyModule._compile(code, filename);
  loaded.set(asset, lazyModule.exports);
  return lazyModule.exports;
}
