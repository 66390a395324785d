// Jest transformer: TypeScript and ESM-only dependencies (chalk, ora, execa, commander …) become
// CommonJS with esbuild, the same compiler that bundles the executable. CommonJS files from
// node_modules pass through untouched.
'use strict';
const { transformSync } = require('esbuild');
const crypto = require('node:crypto');

const esmSyntax = /^\s*(import\s*[\w*{'"]|export\s)/m;
const metaBanner = "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;";

function process(sourceText, sourcePath) {
  const isTs = sourcePath.endsWith('.ts');
  if (!isTs && sourcePath.includes('/node_modules/') && !esmSyntax.test(sourceText)) {
    return { code: sourceText };
  }
  const result = transformSync(sourceText, {
    loader: isTs ? 'ts' : 'js',
    format: 'cjs',
    target: 'node24',
    sourcemap: 'inline',
    sourcefile: sourcePath,
    define: { 'import.meta.url': '__importMetaUrl' },
    // Jest's module registry serves require(); import() would need --experimental-vm-modules.
    supported: { 'dynamic-import': false },
    banner: sourceText.includes('import.meta.url') ? metaBanner : '',
    logLevel: 'silent',
  });
  return { code: result.code };
}

function getCacheKey(sourceText, sourcePath) {
  return crypto
    .createHash('sha256')
    .update('v2\0')
    .update(sourcePath)
    .update('\0')
    .update(sourceText)
    .digest('hex');
}

module.exports = { process, getCacheKey };
