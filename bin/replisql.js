#!/usr/bin/env node
// Entry point for `npx replisql` / `npm start`: runs the compiled CLI from dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const main = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(main)) {
  console.error('replisql: dist/ is missing; run `npm ci && npm run build` in ' + root + ' first');
  process.exit(1);
}
await import(pathToFileURL(main).href);
