// The SDK bundle: one ESM file from src/index.ts, no dependencies inside.
// Shared by the build (scripts/build.mjs), the size measurement
// (scripts/size.mjs) and the test that the committed web/clarion-client.js
// is up to date (test/unit/bundle.test.js).

import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(PACKAGE_DIR, '..', '..');
/** The copy `clarion serve` embeds and serves at /clarion-client.js. */
export const WEB_BUNDLE = path.join(REPO_ROOT, 'web', 'clarion-client.js');

const pkg = JSON.parse(readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'));

/** The bundle's text; `minify` for the size figure. */
export async function bundle({ minify = false } = {}) {
  const result = await build({
    absWorkingDir: PACKAGE_DIR, // the path comments in the output do not depend on the cwd
    entryPoints: [path.join(PACKAGE_DIR, 'src', 'index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    minify,
    legalComments: 'none',
    write: false,
    banner: minify
      ? undefined
      : {
          js: `// clarion-client ${pkg.version}: the Clarion client SDK, built from clients/js/src by\n// \`npm run build\` in clients/js. Do not edit: change the sources and rebuild.`,
        },
  });
  return result.outputFiles[0].text;
}

/** The bundle minified, then gzipped at level 9: `{ minified, gzipped }` in bytes. */
export async function sizes() {
  const minified = Buffer.from(await bundle({ minify: true }));
  return { minified: minified.length, gzipped: gzipSync(minified, { level: 9 }).length };
}
