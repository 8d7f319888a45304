import { resolve } from 'node:path';
import { checkTree } from './layering.js';

const srcRoot = resolve(import.meta.dirname, '..', 'src');
const violations = checkTree(srcRoot);
for (const v of violations) console.error(`src/${v.file}:${v.line}: ${v.message}`);
if (violations.length > 0) {
  console.error(`layering: ${violations.length} violation(s); see DESIGN.md §2 for the rules`);
  process.exit(1);
}
console.log('layering: ok');
