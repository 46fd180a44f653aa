// Gives the peer engines (TensorFlow.js's WebGPU backend, jax-js) the browser globals they probe
// for, backed by Dawn, so that they run headless in Node on the adapter dawnet itself would pick.
// Import this module before either engine: tfjs-backend-webgpu registers itself at import time
// only if `navigator.gpu` is already there.
import { availableParallelism } from 'node:os';
import { create, globals } from 'webgpu';

/**
 * The same Dawn toggles as dawnet's src/gpu/device.ts (DAWNET_ADAPTER, DAWNET_BACKEND) and the
 * same power preference, so that Dawn's ordering (discrete > integrated > CPU) picks the same
 * adapter for the peers as for dawnet.
 */
function dawnFlags(): string[] {
  const flags: string[] = [];
  if (process.env.DAWNET_ADAPTER) flags.push(`adapter=${process.env.DAWNET_ADAPTER}`);
  if (process.env.DAWNET_BACKEND) flags.push(`backend=${process.env.DAWNET_BACKEND}`);
  return flags;
}

/**
 * Dawn's GPU instance must outlive every device opened from it (if it is collected, Dawn
 * segfaults). It hangs off `navigator`, which hangs off `globalThis`: it lives as long as the process.
 */
const dawn: GPU = create(dawnFlags());

/**
 * `navigator.gpu` as the engines see it. Whatever adapter options an engine passes (tfjs may ask
 * for 'low-power'), every request gets dawnet's choice; each engine then opens its own device on it,
 * as two libraries on one page of a browser would.
 */
const gpu = {
  requestAdapter: (): Promise<GPUAdapter | null> => dawn.requestAdapter({ powerPreference: 'high-performance' }),
  dawn,
};

interface PeerNavigator {
  gpu: typeof gpu;
  /** jax-js's kernel tuner tests it for "Mobi|Android"; tfjs-core's isMobile() reads it too. */
  userAgent: string;
  /** jax-js sizes its Wasm worker pool from it. */
  hardwareConcurrency: number;
}

const peerNavigator: PeerNavigator = {
  gpu,
  userAgent: `Node.js/${process.versions.node} (${process.platform}; ${process.arch}) dawn.node`,
  hardwareConcurrency: availableParallelism(),
};

// GPUBufferUsage, GPUMapMode, GPUShaderStage… are globals in a browser; both engines use them.
Object.assign(globalThis, globals);
// Node 21+ has a `navigator` of its own (without gpu); define ours over it either way.
Object.defineProperty(globalThis, 'navigator', { value: peerNavigator, configurable: true, writable: true });

/** The adapter the peers run on, described as dawnet describes its own (src/gpu/device.ts). */
export async function peerAdapterName(): Promise<string> {
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('No WebGPU adapter was found (run `npm run device` for the hints).');
  const info = adapter.info;
  return info.description || info.device || info.vendor || 'unknown adapter';
}
