// What the open device offers, as one plain record: planners read it (and nothing else about
// the device), so they are pure functions that tests call with a made-up record.

export interface DeviceCapabilities {
  /** The adapter's description, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.7, 256 bits)". */
  adapter: string;
  vendor: string;
  architecture: string;
  /** A CPU implementation (lavapipe, SwiftShader) rather than a GPU. */
  software: boolean;
  /** Subgroup widths the device may use; 0 when it has no subgroup operations. */
  subgroupMin: number;
  subgroupMax: number;
  shaderF16: boolean;
  timestampQuery: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  maxTextureDimension2D: number;
}

/** The record of an opened device and its adapter's description. */
export function capabilitiesOf(device: GPUDevice, adapter: string, software: boolean): DeviceCapabilities {
  const info = device.adapterInfo;
  const subgroups = device.features.has('subgroups');
  const l = device.limits;
  return {
    adapter,
    vendor: info.vendor,
    architecture: info.architecture,
    software,
    subgroupMin: subgroups ? (info.subgroupMinSize ?? 0) : 0,
    subgroupMax: subgroups ? (info.subgroupMaxSize ?? 0) : 0,
    shaderF16: device.features.has('shader-f16'),
    timestampQuery: device.features.has('timestamp-query'),
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxTextureDimension2D: l.maxTextureDimension2D,
  };
}

/**
 * lavapipe's SIMD kernels (kernels/*_simd.wgsl) assume one subgroup is exactly one 8-wide
 * vector of a CPU: software adapters with 8-lane subgroups (LP_NATIVE_VECTOR_WIDTH=256).
 */
export const simdCapable = (caps: DeviceCapabilities): boolean => caps.software && caps.subgroupMin === 8 && caps.subgroupMax === 8;

/** Which kernels planners choose: their default, or the GPU kernels forced (DAWNET_KERNELS=gemm). */
export type KernelChoice = 'default' | 'gemm';

export function kernelChoice(value = process.env.DAWNET_KERNELS): KernelChoice {
  if (value === undefined || value === '' || value === 'default') return 'default';
  if (value === 'gemm') return 'gemm';
  throw new Error(`DAWNET_KERNELS must be 'default' or 'gemm', got '${value}'`);
}
