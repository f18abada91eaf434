// Device selection (src/engine/device.ts): the decision logic with injected probes, the parsers with fake
// outputs, and the real probes of this machine (which, without a GPU, must pick the CPU and explain why).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  missingLibraries,
  parseLdconfig,
  parseNvidiaSmiNames,
  parseProcGpuInformation,
  selectDevice,
  systemProbes,
  visibleGpus,
  type DeviceProbes,
} from '../../src/engine/device.js';

/** Probes of a machine where everything works; override one to break it. */
function probes(overrides: Partial<DeviceProbes> = {}): DeviceProbes {
  return {
    platform: () => 'linux/x64',
    missingProviderFiles: () => [],
    gpus: async () => ({ names: ['NVIDIA H200'] }),
    cudaSession: async () => {},
    missingRuntimeLibraries: () => [],
    ...overrides,
  };
}

test('parseNvidiaSmiNames: one name per line; driver failures and "No devices" give none', () => {
  assert.deepEqual(parseNvidiaSmiNames('NVIDIA H200\n'), ['NVIDIA H200']);
  assert.deepEqual(parseNvidiaSmiNames('NVIDIA H100 80GB HBM3\nNVIDIA H100 80GB HBM3\n\n'), ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']);
  assert.deepEqual(parseNvidiaSmiNames('No devices were found\n'), []);
  assert.deepEqual(parseNvidiaSmiNames("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"), []);
  assert.deepEqual(parseNvidiaSmiNames(''), []);
});

test('parseProcGpuInformation reads the Model line of /proc/driver/nvidia/gpus/*/information', () => {
  const text = 'Model: \t\t NVIDIA H200\nIRQ:   \t\t 35\nGPU UUID: \t GPU-0f1e\nVideo BIOS: \t 96.00.a5.00.01\nBus Type: \t PCIe\n';
  assert.equal(parseProcGpuInformation(text), 'NVIDIA H200');
  assert.equal(parseProcGpuInformation('IRQ: 35\n'), undefined);
});

test('visibleGpus applies CUDA_VISIBLE_DEVICES', () => {
  const names = ['GPU A', 'GPU B'];
  assert.deepEqual(visibleGpus(names, undefined), names);
  assert.deepEqual(visibleGpus(names, ''), []);
  assert.deepEqual(visibleGpus(names, '-1'), []);
  assert.deepEqual(visibleGpus(names, '1'), ['GPU B']);
  assert.deepEqual(visibleGpus(names, '1,0'), ['GPU B', 'GPU A']);
  assert.deepEqual(visibleGpus(names, '0,5,1'), ['GPU A'], 'CUDA stops at the first invalid index');
  assert.deepEqual(visibleGpus(names, 'GPU-8e2c1b7a'), names, 'UUIDs: some GPU is visible');
});

test('parseLdconfig and missingLibraries find libraries in the loader cache or LD_LIBRARY_PATH', () => {
  const ldconfig = parseLdconfig(
    [
      '812 libs found in cache `/etc/ld.so.cache\'',
      '\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13',
      '\tlibcublas.so.13 (libc6,x86-64) => /usr/local/cuda/lib64/libcublas.so.13',
      '\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6',
    ].join('\n'),
  );
  assert.ok(ldconfig.has('libcudart.so.13') && ldconfig.has('libcublas.so.13') && ldconfig.has('libc.so.6'));
  const exists = (path: string) => path === '/opt/cuda/lib/libcurand.so.10';
  assert.deepEqual(
    missingLibraries(['libcublas.so.13', 'libcublasLt.so.13', 'libcudart.so.13', 'libcurand.so.10'], ldconfig, '/opt/none::/opt/cuda/lib', exists),
    ['libcublasLt.so.13'],
  );
});

test('cpu is taken as asked, without probing', async () => {
  const broken = probes({ platform: () => assert.fail('probed') });
  assert.deepEqual(await selectDevice('cpu', broken), { provider: 'cpu', reason: 'POLYHEAD_DEVICE=cpu' });
});

test('auto: CUDA when every check passes, with the GPU name', async () => {
  const selection = await selectDevice('auto', probes());
  assert.equal(selection.provider, 'cuda');
  assert.equal(selection.gpuName, 'NVIDIA H200');
  assert.match(selection.reason, /NVIDIA H200/);
  assert.equal((await selectDevice('cuda', probes())).provider, 'cuda');
});

const failures: Array<[string, Partial<DeviceProbes>, RegExp]> = [
  ['not Linux x64', { platform: () => 'darwin/arm64' }, /Linux x64 only \(this is darwin\/arm64\)/],
  ['provider missing', { missingProviderFiles: () => ['/x/libonnxruntime_providers_cuda.so'] }, /CUDA provider not installed .*: run npm run gpu:install/],
  ['no GPU', { gpus: async () => ({ names: [], detail: 'nvidia-smi: not found; no /proc/driver/nvidia/gpus' }) }, /no NVIDIA GPU visible \(nvidia-smi: not found/],
  [
    'CUDA runtime missing',
    {
      cudaSession: async () => {
        throw new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library\nmore');
      },
      missingRuntimeLibraries: () => ['libcublasLt.so.13'],
    },
    /CUDA execution provider failed to start on NVIDIA H200: OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library; not found by ldconfig or LD_LIBRARY_PATH: libcublasLt\.so\.13 \(install the CUDA 13 runtime/,
  ],
];

for (const [name, overrides, reason] of failures) {
  test(`auto -> cpu with the reason when ${name}`, async () => {
    const selection = await selectDevice('auto', probes(overrides));
    assert.equal(selection.provider, 'cpu');
    assert.equal(selection.gpuName, undefined);
    assert.match(selection.reason, /^POLYHEAD_DEVICE=auto: using the CPU: /);
    assert.match(selection.reason, reason);
  });
  test(`cuda throws an actionable error when ${name}`, async () => {
    await assert.rejects(selectDevice('cuda', probes(overrides)), (error: Error) => {
      assert.match(error.message, /^POLYHEAD_DEVICE=cuda, but /);
      assert.match(error.message, reason);
      assert.match(error.message, /POLYHEAD_DEVICE=auto would fall back to the CPU/);
      return true;
    });
  });
}

test('the checks stop at the first failure (no GPU probe without the provider)', async () => {
  const selection = await selectDevice('auto', probes({ missingProviderFiles: () => ['x'], gpus: () => assert.fail('probed the GPU'), cudaSession: () => assert.fail('ran a session') }));
  assert.match(selection.reason, /gpu:install/);
});

test('this machine: auto picks the CPU and says why; cuda refuses (skipped where a GPU is visible)', async (t) => {
  const real = systemProbes();
  if ((await real.gpus()).names.length) {
    t.skip('an NVIDIA GPU is visible here');
    return;
  }
  const selection = await selectDevice('auto');
  assert.equal(selection.provider, 'cpu');
  assert.match(selection.reason, /CUDA provider not installed .*npm run gpu:install|no NVIDIA GPU visible|Linux x64 only/);
  await assert.rejects(selectDevice('cuda'), /POLYHEAD_DEVICE=cuda, but .*(gpu:install|no NVIDIA GPU visible|Linux x64 only)/);
});

test('this machine: when the provider files are installed, the CUDA probe fails cleanly and the CPU keeps working', async (t) => {
  const real = systemProbes();
  if (real.platform() !== 'linux/x64' || real.missingProviderFiles().length) {
    t.skip('CUDA provider not installed here (npm run gpu:install)');
    return;
  }
  if ((await real.gpus()).names.length) {
    t.skip('an NVIDIA GPU is visible here');
    return;
  }
  // A "GPU" that is not there: the session probe must throw (not crash), with a reason.
  const selection = await selectDevice('auto', { ...real, gpus: async () => ({ names: ['Imaginary GPU'] }) });
  assert.equal(selection.provider, 'cpu');
  assert.match(selection.reason, /CUDA execution provider failed to start on Imaginary GPU: /);
  const { OnnxSession, float32Tensor } = await import('../../src/engine/onnx-runtime.js');
  const { OnnxGraphBuilder } = await import('../../src/onnx/graph-builder.js');
  const g = new OnnxGraphBuilder({ name: 'after-cuda-failure' });
  g.input('x', 'float32', [2]);
  g.op('Mul', ['x', 'x'], { output: 'y' });
  g.output('y', 'float32', [2]);
  const session = await OnnxSession.fromBytes(g.toBytes());
  assert.deepEqual([...(await session.run({ x: float32Tensor(new Float32Array([3, 4]), [2]) }, ['y'])).y!.data], [9, 16]);
  await session.release();
});
