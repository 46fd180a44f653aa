// Acquires a WebGPU device through Dawn: picks the adapter, asks for its own limits, and turns
// Dawn's asynchronous error reports into errors the runtime can throw at its next sync point.
import { create, globals } from 'webgpu';

export interface DeviceOptions {
  /** Substring of the adapter's name, e.g. "NVIDIA" or "llvmpipe". Env: DAWNET_ADAPTER. */
  adapter?: string;
  /** Dawn backend: vulkan, metal, d3d12, opengl… Env: DAWNET_BACKEND. */
  backend?: string;
  /** Print the adapter's name once when the device opens (default true). Env: DAWNET_QUIET=1 silences it. */
  announce?: boolean;
  /**
   * Lowers the storage-binding ceiling below the device's (bytes, or text such as "1MiB"), so
   * that ops bind large tensors in windows; tests use it to exercise that path. Env: DAWNET_MAX_BINDING.
   */
  maxBinding?: string | number;
}

export interface OpenedDevice {
  device: GPUDevice;
  adapterName: string;
  /** Dawn's short id of the adapter (info.device), which data-parallel training matches to Dawn's adapter list. */
  adapterId: string;
  backend: string;
  isSoftware: boolean;
}

const INSTALL_HINT = [
  'No WebGPU adapter was found.',
  '  - On a machine with a GPU, install its Vulkan driver (NVIDIA: the proprietary driver ships one).',
  '  - On a CPU-only Debian/Ubuntu machine, install Mesa\'s lavapipe driver: sudo bash scripts/install-vulkan.sh',
  '    (Debian bookworm needs Mesa >= 24 from bookworm-backports; the script sets that up).',
  '  - To pick among several adapters set DAWNET_ADAPTER to part of its name; DAWNET_BACKEND picks the backend.',
].join('\n');

let globalsInstalled = false;

/**
 * The names of every adapter Dawn sees, in its order. WebGPU has no enumeration call; Dawn lists
 * them when asked for an adapter that does not exist, so that list is read.
 */
export async function listAdapters(): Promise<string[]> {
  const gpu = create(['adapter=\u0000dawnet-list-adapters']);
  let message = '';
  try {
    await gpu.requestAdapter();
  } catch (err) {
    message = err instanceof Error ? err.message : String(err);
  }
  return [...message.matchAll(/name: '([^']*)'/g)].map((m) => m[1]!);
}

/** Whether a name from listAdapters() is the adapter whose info.device is `id` (Dawn writes it as a slug of the name). */
export function isAdapter(name: string, id: string): boolean {
  const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return slug(name) === slug(id) || name === id;
}

/** Dawn's GPU instance must outlive its devices: if it is collected, they crash. */
const instances: GPU[] = [];

/** Opens a device with the adapter's own limits, not WebGPU's conservative defaults. */
export async function openDevice(options: DeviceOptions = {}): Promise<OpenedDevice> {
  if (!globalsInstalled) {
    // Dawn's GPUBufferUsage, GPUMapMode… constants are expected on globalThis, as in a browser.
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  const adapterName = options.adapter ?? process.env.DAWNET_ADAPTER;
  const backend = options.backend ?? process.env.DAWNET_BACKEND;
  const flags: string[] = [];
  if (adapterName) flags.push(`adapter=${adapterName}`);
  if (backend) flags.push(`backend=${backend}`);
  let adapter: GPUAdapter | null;
  try {
    // Dawn orders adapters discrete > integrated > CPU, so high-performance prefers a real GPU.
    const gpu = create(flags);
    instances.push(gpu);
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`${INSTALL_HINT}\nDawn said: ${detail}`);
  }
  if (!adapter) throw new Error(INSTALL_HINT);

  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    label: 'dawnet',
    // Subgroup operations let CPU adapters move values between SIMD lanes (kernels/matmul_simd.wgsl);
    // f16 and timestamps are asked for where offered, so that the capabilities record shows them.
    requiredFeatures: (['subgroups', 'shader-f16', 'timestamp-query'] as GPUFeatureName[]).filter((f) => adapter.features.has(f)),
    requiredLimits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  const info = adapter.info;
  const name = info.description || info.device || info.vendor || 'unknown adapter';
  const opened: OpenedDevice = {
    device,
    adapterName: name,
    adapterId: info.device,
    backend: backend ?? 'default',
    isSoftware: info.isFallbackAdapter || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(name),
  };
  if ((options.announce ?? true) && process.env.DAWNET_QUIET !== '1') {
    const kind = opened.isSoftware ? 'software' : 'hardware';
    process.stderr.write(`dawnet: ${name} (${kind}, ${info.vendor || 'unknown vendor'})\n`);
  }
  return opened;
}
