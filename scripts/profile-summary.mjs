#!/usr/bin/env node
/**
 * Summarises V8 CPU profiles (node --cpu-prof) as text: for each profile, where the sampled time went
 * (idle, garbage collection, program) and the functions with the most self time, grouped by package
 * or source file. Used to find what keeps the event loop busy under load (docs/gpu.md, docs/reliability.md).
 *
 *   node --cpu-prof --cpu-prof-dir=prof dist/src/main.js   # run, load it, stop it (SIGTERM writes the profile)
 *   node scripts/profile-summary.mjs prof [--top 20] [--skip 5]   # --skip: leave out the first seconds (start-up)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' }, skip: { type: 'string', default: '0' } } });
const top = Number(values.top);
const skipMicros = Number(values.skip) * 1e6;
const files = positionals.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)) : [p]));
if (files.length === 0) {
  console.error('usage: profile-summary.mjs <profile or folder of .cpuprofile files> [--top N]');
  process.exit(1);
}

/** "onnxruntime-node", "graphql", "src/engine/scheduler.js", "node:internal" ... from a script URL. */
function where(url) {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  if (url.startsWith('wasm:')) return '(wasm)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const source = url.search(/\/(src|dist|bench|scripts)\//);
  return source >= 0 ? url.slice(source + 1) : basename(url);
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // timeDeltas[i] is the time before sample i; attribute it to that sample's node.
  let elapsed = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    elapsed += profile.timeDeltas[i] ?? 0;
    if (elapsed >= skipMicros) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byCategory = new Map();
  const byFunction = new Map();
  const byPlace = new Map();
  for (const [id, micros] of self) {
    const { callFrame } = byId.get(id);
    const name = callFrame.functionName || '(anonymous)';
    const category = ['(idle)', '(garbage collector)', '(program)'].includes(name) ? name : 'javascript';
    byCategory.set(category, (byCategory.get(category) ?? 0) + micros);
    if (category !== 'javascript') continue;
    const place = where(callFrame.url);
    const key = `${name}  ${place}${callFrame.url && !callFrame.url.includes('node_modules') ? `:${callFrame.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    byPlace.set(place, (byPlace.get(place) ?? 0) + micros);
  }
  const pct = (x) => `${((100 * x) / total).toFixed(1).padStart(5)}%`;
  const busy = total - (byCategory.get('(idle)') ?? 0);
  console.log(`\n== ${basename(file)}: ${(total / 1e6).toFixed(2)} s sampled, busy ${pct(busy)}`);
  console.log(`   ${[...byCategory].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${pct(v).trim()}`).join(', ')}`);
  console.log('   by package / file (self time):');
  for (const [k, v] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, Math.ceil(top / 2))) console.log(`   ${pct(v)}  ${k}`);
  console.log('   top functions (self time):');
  for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`   ${pct(v)}  ${k}`);
}
