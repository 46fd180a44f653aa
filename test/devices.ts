// Made-up device records for the planners' tests: they run without the device they describe.
import type { DeviceCapabilities } from '../src/gpu/capabilities.js';

const limits = {
  maxStorageBufferBindingSize: 2 ** 31 - 4,
  maxBufferSize: 2 ** 40,
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupsPerDimension: 65535,
  maxTextureDimension2D: 16384,
};

export const H200: DeviceCapabilities = {
  adapter: 'NVIDIA H200',
  vendor: 'nvidia',
  architecture: 'hopper',
  software: false,
  subgroupMin: 32,
  subgroupMax: 32,
  shaderF16: true,
  timestampQuery: true,
  ...limits,
};

/** lavapipe at LP_NATIVE_VECTOR_WIDTH = 32·lanes: 128 bits gives 4 lanes, 256 (the default) 8, 512 16. */
export const lavapipe = (lanes: number): DeviceCapabilities => ({
  adapter: `llvmpipe (LLVM 15.0.7, ${32 * lanes} bits)`,
  vendor: 'mesa',
  architecture: '',
  software: true,
  subgroupMin: lanes,
  subgroupMax: lanes,
  shaderF16: false,
  timestampQuery: true,
  ...limits,
  maxStorageBufferBindingSize: 2 ** 27,
  maxTextureDimension2D: 16384,
});
