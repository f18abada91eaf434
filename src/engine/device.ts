// Where the backbone runs: POLYHEAD_DEVICE=auto|cpu|cuda. `auto` takes CUDA only when every check passes
// (Linux x64, the CUDA provider libraries next to onnxruntime-node's binding, a visible NVIDIA GPU, and a
// tiny session that really runs on the CUDA execution provider); otherwise the CPU, with the reason.
// `cuda` runs the same checks and throws an actionable Error at the first that fails.
// The checks are injectable (DeviceProbes) so the decision is testable on machines without a GPU.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxGraphBuilder } from '../onnx/graph-builder.js';
import { onnxRuntimeInstall, probeExecutionProvider } from './onnx-runtime.js';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';

export interface DeviceSelection {
  provider: 'cpu' | 'cuda';
  /** The GPU's name (e.g. "NVIDIA H200") when the provider is cuda. */
  gpuName?: string;
  /** One line: why this provider (for the start log). */
  reason: string;
}

/** The provider libraries `npm run gpu:install` places next to onnxruntime-node's binding. */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'] as const;

/** CUDA runtime libraries the provider (onnxruntime 1.29.0, CUDA 13 build) loads; cuDNN only for some ops. */
export const CUDA_RUNTIME_LIBRARIES = ['libcublas.so.13', 'libcublasLt.so.13', 'libcudart.so.13', 'libcurand.so.10', 'libcudnn.so.9'] as const;

export interface GpuProbe {
  /** Names of the visible GPUs (after CUDA_VISIBLE_DEVICES), empty when none. */
  names: string[];
  /** Why none were found, when none were. */
  detail?: string;
}

export interface DeviceProbes {
  /** `${process.platform}/${process.arch}` */
  platform(): string;
  /** The provider library files that are missing (absolute paths); empty when all are in place. */
  missingProviderFiles(): string[];
  gpus(): Promise<GpuProbe>;
  /** Runs a tiny model on the CUDA execution provider only; throws onnxruntime's message when it cannot. */
  cudaSession(): Promise<void>;
  /** CUDA runtime libraries that neither `ldconfig -p` nor LD_LIBRARY_PATH has. */
  missingRuntimeLibraries(): string[];
}

class DeviceCheckFailed extends Error {}

/** Picks the execution provider for `requested`. Never throws for auto/cpu; throws an actionable Error for cuda. */
export async function selectDevice(requested: DeviceRequest, probes: DeviceProbes = systemProbes()): Promise<DeviceSelection> {
  if (requested === 'cpu') return { provider: 'cpu', reason: 'POLYHEAD_DEVICE=cpu' };
  try {
    const gpuName = await checkCuda(probes);
    return { provider: 'cuda', gpuName, reason: `POLYHEAD_DEVICE=${requested}: CUDA execution provider running on ${gpuName}` };
  } catch (error) {
    if (!(error instanceof DeviceCheckFailed)) throw error;
    if (requested === 'cuda') {
      throw new Error(`POLYHEAD_DEVICE=cuda, but ${error.message}. (POLYHEAD_DEVICE=auto would fall back to the CPU.)`);
    }
    return { provider: 'cpu', reason: `POLYHEAD_DEVICE=auto: using the CPU: ${error.message}` };
  }
}

async function checkCuda(probes: DeviceProbes): Promise<string> {
  const platform = probes.platform();
  if (platform !== 'linux/x64') throw new DeviceCheckFailed(`the CUDA provider for onnxruntime-node is available for Linux x64 only (this is ${platform})`);
  const missing = probes.missingProviderFiles();
  if (missing.length) throw new DeviceCheckFailed(`CUDA provider not installed (missing ${missing.join(', ')}): run npm run gpu:install`);
  const gpus = await probes.gpus();
  if (!gpus.names.length) throw new DeviceCheckFailed(`no NVIDIA GPU visible${gpus.detail ? ` (${gpus.detail})` : ''}`);
  try {
    await probes.cudaSession();
  } catch (error) {
    const libraries = probes.missingRuntimeLibraries();
    const hint = libraries.length
      ? `; not found by ldconfig or LD_LIBRARY_PATH: ${libraries.join(', ')} (install the CUDA 13 runtime, cuBLAS, cuRAND and cuDNN 9, or add their folder to LD_LIBRARY_PATH)`
      : '';
    throw new DeviceCheckFailed(`the CUDA execution provider failed to start on ${gpus.names[0]}: ${firstLine((error as Error).message)}${hint}`);
  }
  return gpus.names[0]!;
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim())?.trim() ?? text;
}

// ---- parsing helpers (pure, tested with fake inputs) ----

/** GPU names from `nvidia-smi --query-gpu=name --format=csv,noheader` (one per line). */
export function parseNvidiaSmiNames(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !/^no devices/i.test(line) && !/failed|error|not found/i.test(line));
}

/** The model line of /proc/driver/nvidia/gpus/<bus id>/information ("Model: \t NVIDIA H200"). */
export function parseProcGpuInformation(text: string): string | undefined {
  return /^Model:\s*(.+?)\s*$/m.exec(text)?.[1];
}

/**
 * Applies CUDA_VISIBLE_DEVICES to the GPUs the driver lists: unset = all; "" or "-1" = none; a list of
 * indices = those, in that order (UUIDs and MIG ids are taken as "some GPU is visible": all are kept).
 */
export function visibleGpus(names: readonly string[], cudaVisibleDevices: string | undefined): string[] {
  if (cudaVisibleDevices === undefined) return [...names];
  const entries = cudaVisibleDevices.split(',').map((e) => e.trim()).filter(Boolean);
  if (!entries.length || entries[0] === '-1' || /^NoDevFiles$/i.test(entries[0]!)) return [];
  if (!entries.every((e) => /^\d+$/.test(e))) return [...names];
  const picked: string[] = [];
  for (const entry of entries) {
    const name = names[Number(entry)];
    if (name === undefined) break; // CUDA stops at the first invalid index
    picked.push(name);
  }
  return picked;
}

/** Library file names (e.g. libcublas.so.13) that `ldconfig -p` lists. */
export function parseLdconfig(stdout: string): Set<string> {
  const found = new Set<string>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\S+\.so[\w.]*)\s+\(/.exec(line);
    if (match) found.add(match[1]!);
  }
  return found;
}

/** Which of `required` neither ldconfig's cache nor a folder of LD_LIBRARY_PATH holds. */
export function missingLibraries(
  required: readonly string[],
  ldconfig: ReadonlySet<string>,
  ldLibraryPath: string | undefined,
  exists: (path: string) => boolean = existsSync,
): string[] {
  const dirs = (ldLibraryPath ?? '').split(':').filter(Boolean);
  return required.filter((lib) => !ldconfig.has(lib) && !dirs.some((dir) => exists(join(dir, lib))));
}

// ---- the real probes ----

export function systemProbes(env: NodeJS.ProcessEnv = process.env): DeviceProbes {
  return {
    platform: () => `${process.platform}/${process.arch}`,
    missingProviderFiles: () => {
      const { binaryDir } = onnxRuntimeInstall();
      return CUDA_PROVIDER_FILES.map((name) => join(binaryDir, name)).filter((path) => !existsSync(path));
    },
    gpus: () => probeGpus(env),
    cudaSession: async () => {
      const out = await probeExecutionProvider('cuda', probeModel(), { x: { data: new Float32Array([1, 2]), dims: [2] } });
      if (out[0] !== 2 || out[1] !== 4) throw new Error(`the CUDA probe computed [${Array.from(out).join(', ')}], expected [2, 4]`);
    },
    missingRuntimeLibraries: () => missingLibraries(CUDA_RUNTIME_LIBRARIES, parseLdconfig(run('ldconfig', ['-p']) ?? run('/sbin/ldconfig', ['-p']) ?? ''), env.LD_LIBRARY_PATH),
  };
}

async function probeGpus(env: NodeJS.ProcessEnv): Promise<GpuProbe> {
  let names: string[] = [];
  let detail: string;
  const smi = await runAsync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader']);
  if (smi.ok) {
    names = parseNvidiaSmiNames(smi.stdout);
    detail = names.length ? '' : 'nvidia-smi lists no GPU';
  } else {
    detail = `nvidia-smi: ${smi.error}`;
    const root = '/proc/driver/nvidia/gpus';
    if (existsSync(root)) {
      for (const bus of readdirSync(root).sort()) {
        try {
          names.push(parseProcGpuInformation(readFileSync(join(root, bus, 'information'), 'utf8')) ?? 'NVIDIA GPU');
        } catch {
          names.push('NVIDIA GPU');
        }
      }
    } else {
      detail += `; no ${root}`;
    }
  }
  const visible = visibleGpus(names, env.CUDA_VISIBLE_DEVICES);
  if (names.length && !visible.length) detail = `CUDA_VISIBLE_DEVICES="${env.CUDA_VISIBLE_DEVICES}" hides all ${names.length} GPU(s)`;
  return visible.length ? { names: visible } : { names: [], detail };
}

/** y = x + x on a float32 [2] tensor: the smallest model that exercises a CUDA kernel. */
function probeModel(): Uint8Array {
  const g = new OnnxGraphBuilder({ name: 'polyhead-cuda-probe' });
  const x = g.input('x', 'float32', [2]);
  g.op('Add', [x, x], { output: 'y' });
  g.output('y', 'float32', [2]);
  return g.toBytes();
}

function run(command: string, args: string[]): string | undefined {
  try {
    // Synchronous on purpose: only called while building an error message.
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }) || undefined;
  } catch {
    return undefined;
  }
}

function runAsync(command: string, args: string[]): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', timeout: 10_000 }, (error, stdout, stderr) => {
      if (!error) resolve({ ok: true, stdout });
      else resolve({ ok: false, error: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : firstLine(stderr || stdout || error.message) });
    });
  });
}
