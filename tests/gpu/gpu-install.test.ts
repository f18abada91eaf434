// scripts/gpu-install.mjs without downloading: its report, its refusal of unpinned onnxruntime versions, and
// the pins it shares with src/engine/device.ts. (Installing for real fetches ~180 MB: run npm run gpu:install.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CUDA_PROVIDER_FILES, CUDA_RUNTIME_LIBRARIES } from '../../src/engine/device.js';

const script = new URL('../../scripts/gpu-install.mjs', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

test('--check reports the provider state and every CUDA runtime library', { skip: !linuxX64 && 'Linux x64 only' }, () => {
  const result = run('--check');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /onnxruntime-node 1\.29\.0: CUDA provider (installed \(sha256 verified\)|not installed)/);
  for (const lib of CUDA_RUNTIME_LIBRARIES) assert.match(result.stdout, new RegExp(`(found  |MISSING) ${lib.replaceAll('.', '\\.')}`));
});

test('refuses an onnxruntime-node version it has no pinned provider for', { skip: !linuxX64 && 'Linux x64 only' }, () => {
  const result = run('--ort-version', '1.30.0', '--check');
  assert.equal(result.status, 1);
  assert.match(result.stderr, /no CUDA provider is pinned for onnxruntime-node 1\.30\.0 \(pinned: 1\.29\.0\)/);
});

test('refuses a tarball that is not the pinned package', { skip: !linuxX64 && 'Linux x64 only' }, () => {
  // Only meaningful when not installed yet (an installed, verified provider is kept as it is).
  const check = run('--check');
  if (/installed \(sha256 verified\)/.test(check.stdout)) return;
  const result = run('--from', script);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /is not com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9 \(integrity sha512-/);
});

test('the script pins the files and libraries device.ts checks for', () => {
  const text = readFileSync(script, 'utf8');
  for (const file of CUDA_PROVIDER_FILES) assert.match(text, new RegExp(`'${file.replaceAll('.', '\\.')}': \\{\\s*path: 'package/Plugins/Linux/x64/${file.replaceAll('.', '\\.')}',\\s*sha256: '[0-9a-f]{64}'`));
  assert.ok(text.includes(`runtime: [${CUDA_RUNTIME_LIBRARIES.map((l) => `'${l}'`).join(', ')}]`));
});
