#!/usr/bin/env node
// npm run gpu:install [-- --from <package.tgz>] [-- --remove]
//
// Places the CUDA execution provider that matches the installed onnxruntime-node next to its native binding
// (node_modules/onnxruntime-node/bin/napi-v6/linux/x64/), taken from the npm registry instead of NuGet
// (onnxruntime-node's own installer downloads from NuGet, which many networks cannot reach). The files are
// verified against sha256 values pinned below before they are copied. Linux x64 only.
//
//   --from <tgz>   use an already downloaded package tarball (same pins) instead of `npm pack`
//   --remove       delete the installed provider files again (the CPU path never needs them)
//   --check        only report what is installed and which CUDA libraries the loader finds
//
// The CPU path is unaffected by these files: onnxruntime loads them only when a session asks for CUDA.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * onnxruntime-node version -> the npm package carrying the same onnxruntime build's CUDA provider.
 * The provider must come from exactly the runtime's version (onnxruntime checks it when loading).
 * com.github.asus4.onnxruntime.linux-x64-gpu (ONNX Runtime for Unity, MIT; the binaries are Microsoft's
 * ONNX Runtime release, MIT): 0.4.9 carries onnxruntime 1.29.0 built for CUDA 13.
 */
const PROVIDERS = {
  '1.29.0': {
    package: 'com.github.asus4.onnxruntime.linux-x64-gpu',
    version: '0.4.9',
    integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
    cuda: '13',
    files: {
      'libonnxruntime_providers_cuda.so': {
        path: 'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so',
        sha256: '56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037',
      },
      'libonnxruntime_providers_shared.so': {
        path: 'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so',
        sha256: 'c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772',
      },
    },
    // What libonnxruntime_providers_cuda.so links against (ldd), plus cuDNN which some ops load.
    runtime: ['libcublas.so.13', 'libcublasLt.so.13', 'libcudart.so.13', 'libcurand.so.10', 'libcudnn.so.9'],
  },
};

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

function fail(message) {
  console.error(`gpu:install: ${message}`);
  process.exit(1);
}

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`the CUDA provider for onnxruntime-node is published for Linux x64 only; this is ${process.platform}/${process.arch}. Polyhead runs on the CPU here (POLYHEAD_DEVICE=auto or cpu).`);
}

const require = createRequire(join(root, 'package.json'));
let ortPackageJson;
try {
  ortPackageJson = require.resolve('onnxruntime-node/package.json');
} catch {
  fail('onnxruntime-node is not installed: run npm ci first');
}
// --ort-version pretends another installed version (to test the refusal).
const ortVersion = option('--ort-version') ?? JSON.parse(readFileSync(ortPackageJson, 'utf8')).version;
const binaryDir = join(dirname(ortPackageJson), 'bin', 'napi-v6', 'linux', 'x64');
const provider = PROVIDERS[ortVersion];
if (!provider) {
  fail(
    `no CUDA provider is pinned for onnxruntime-node ${ortVersion} (pinned: ${Object.keys(PROVIDERS).join(', ')}). ` +
      'The provider must match the runtime exactly: keep onnxruntime-node at a pinned version, or add the matching package and its sha256s to PROVIDERS in scripts/gpu-install.mjs.',
  );
}
const installed = (name) => join(binaryDir, name);
const isInstalled = () => Object.entries(provider.files).every(([name, f]) => existsSync(installed(name)) && sha256(installed(name)) === f.sha256);

if (flag('--remove')) {
  for (const name of Object.keys(provider.files)) rmSync(installed(name), { force: true });
  console.log(`gpu:install: removed the CUDA provider from ${binaryDir}`);
  process.exit(0);
}

if (flag('--check')) {
  console.log(`onnxruntime-node ${ortVersion}: CUDA provider ${isInstalled() ? 'installed (sha256 verified)' : 'not installed'} in ${binaryDir}`);
  reportRuntime();
  process.exit(0);
}

if (isInstalled()) {
  console.log(`gpu:install: the CUDA provider for onnxruntime ${ortVersion} is already installed (sha256 verified) in ${binaryDir}`);
} else {
  const work = mkdtempSync(join(tmpdir(), 'polyhead-gpu-install-'));
  try {
    let tarball = option('--from');
    if (tarball) {
      tarball = resolve(tarball);
      const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
      if (integrity !== provider.integrity) throw new Error(`${tarball} is not ${provider.package}@${provider.version} (integrity ${integrity}, expected ${provider.integrity})`);
    } else {
      const spec = `${provider.package}@${provider.version}`;
      console.log(`gpu:install: fetching ${spec} (onnxruntime ${ortVersion}, CUDA ${provider.cuda}; ~180 MB) from the npm registry...`);
      // npm checks the tarball against the registry's integrity; the pins below check the files themselves.
      const packed = spawnSync('npm', ['pack', spec, '--pack-destination', work, '--json', '--loglevel=error'], { cwd: root, encoding: 'utf8', shell: false });
      if (packed.status !== 0) throw new Error(`npm pack ${spec} failed (is the npm registry reachable?):\n${packed.stderr || packed.stdout}`);
      const name = readdirSync(work).find((f) => f.endsWith('.tgz'));
      if (!name) throw new Error(`npm pack ${spec} wrote no tarball`);
      tarball = join(work, name);
    }
    const members = Object.values(provider.files).map((f) => f.path);
    const untar = spawnSync('tar', ['xzf', tarball, '-C', work, ...members], { encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`could not extract ${members.join(', ')} from ${tarball}: ${untar.stderr}`);
    for (const [name, f] of Object.entries(provider.files)) {
      const extracted = join(work, f.path);
      const actual = sha256(extracted);
      if (actual !== f.sha256) throw new Error(`${name} from ${provider.package}@${provider.version} has sha256 ${actual}, expected ${f.sha256}: refusing to install it`);
    }
    for (const [name, f] of Object.entries(provider.files)) {
      // Copy beside the target, then rename: a reader never sees half a library.
      const tmp = `${installed(name)}.${process.pid}.tmp`;
      copyFileSync(join(work, f.path), tmp);
      chmodSync(tmp, 0o755);
      renameSync(tmp, installed(name));
    }
    console.log(`gpu:install: installed ${Object.keys(provider.files).join(' and ')} (sha256 verified) into ${binaryDir}`);
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    fail(error.message);
  }
  rmSync(work, { recursive: true, force: true });
}
reportRuntime();

function reportRuntime() {
  let ldconfig = '';
  for (const cmd of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const result = spawnSync(cmd, ['-p'], { encoding: 'utf8' });
    if (result.status === 0) {
      ldconfig = result.stdout;
      break;
    }
  }
  const cache = new Map();
  for (const line of ldconfig.split('\n')) {
    const match = /^\s*(\S+\.so[\w.]*)\s+\(.*=>\s*(\S+)/.exec(line);
    if (match && !cache.has(match[1])) cache.set(match[1], match[2]);
  }
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  console.log(`The CUDA provider needs these CUDA ${provider.cuda} runtime libraries on the loader path (ldconfig or LD_LIBRARY_PATH):`);
  let missing = 0;
  for (const lib of provider.runtime) {
    const where = cache.get(lib) ?? dirs.map((d) => join(d, lib)).find((p) => existsSync(p));
    if (!where) missing++;
    console.log(`  ${where ? 'found  ' : 'MISSING'} ${lib}${where ? `  ${where}` : ''}${lib.startsWith('libcudnn') ? '  (cuDNN: needed by some ops only)' : ''}`);
  }
  if (missing) {
    console.log(
      `Install the CUDA ${provider.cuda} runtime with cuBLAS and cuRAND, and cuDNN 9 (NVIDIA's apt repository or the CUDA toolkit), ` +
        'or add the folder that holds them to LD_LIBRARY_PATH. An NVIDIA driver for CUDA 13 must be installed too.',
    );
  }
  console.log('Then: POLYHEAD_DEVICE=cuda npm start (fails with the reason if CUDA cannot work), or POLYHEAD_DEVICE=auto (the default) to fall back to the CPU.');
}
