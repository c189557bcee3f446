// `npm run size`: the bundle minified, then gzipped (level 9), in bytes:
// the figure in README.md (test/unit/package.test.js checks it is current).

import { sizes } from './bundle.mjs';

const { minified, gzipped } = await sizes();
const kib = (n) => (n / 1024).toFixed(1);
console.log(`minified: ${minified} B (${kib(minified)} KiB)`);
console.log(`minified + gzip: ${gzipped} B (${kib(gzipped)} KiB)`);
