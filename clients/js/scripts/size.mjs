// `npm run size`: the bundle minified, then gzipped (level 9), in bytes:
// the figure in README.md.

import { gzipSync } from 'node:zlib';
import { bundle } from './bundle.mjs';

const minified = await bundle({ minify: true });
const gzipped = gzipSync(Buffer.from(minified), { level: 9 });
const kib = (n) => (n / 1024).toFixed(1);
console.log(`minified: ${minified.length} B (${kib(minified.length)} KiB)`);
console.log(`minified + gzip: ${gzipped.length} B (${kib(gzipped.length)} KiB)`);
