// `npm run build`: dist/clarion-client.js (ESM) and dist/*.d.ts for the
// package, and web/clarion-client.js, the copy `clarion serve` embeds.
// `--no-web` leaves web/ alone (what `npm test` does, so that
// test/unit/bundle.test.js catches a committed copy that is out of date).

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundle, PACKAGE_DIR, WEB_BUNDLE } from './bundle.mjs';

const dist = path.join(PACKAGE_DIR, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const code = await bundle();
writeFileSync(path.join(dist, 'clarion-client.js'), code);
const web = !process.argv.includes('--no-web');
if (web) writeFileSync(WEB_BUNDLE, code);
const tsc = path.join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(PACKAGE_DIR, 'tsconfig.json')], { stdio: 'inherit' });
console.log(`built dist/${web ? ` and ${path.relative(process.cwd(), WEB_BUNDLE)}` : ''} (${code.length} bytes)`);
