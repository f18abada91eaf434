#!/usr/bin/env node
// The polyhead command line; the code lives in the build (npm install builds it).
import('../dist/src/cli/polyhead.js').catch((error) => {
  console.error(error?.code === 'ERR_MODULE_NOT_FOUND' ? 'polyhead is not built: run `npm run build`' : error);
  process.exit(1);
});
