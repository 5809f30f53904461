#!/usr/bin/env node
// Writes dist/index.mjs so `import { vgg } from 'vgg-native'` works: it
// re-exports the CommonJS build's named exports (one implementation, two doors).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const dist = path.resolve(__dirname, '..', 'dist');
const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
const body = ["import cjs from './index.js';", `export const { ${names.join(', ')} } = cjs;`, 'export default cjs;', ''].join('\n');
fs.writeFileSync(path.join(dist, 'index.mjs'), body);
