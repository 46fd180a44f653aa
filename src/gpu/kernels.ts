// Loads WGSL from kernels/<file>.wgsl, reflects it with wgsl_reflect, and caches one compute
// pipeline per (file, entry point, override constants). Binding layouts come from the WGSL itself.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';

export const KERNEL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels');

export type Overrides = Record<string, number>;

export interface StorageBinding {
  name: string;
  binding: number;
  readOnly: boolean;
  /** Bytes of one array element (4 for array<f32>, 16 for array<vec4<f32>>). */
  elementBytes: number;
}

export interface UniformField {
  name: string;
  offset: number;
  /** 'u32' | 'i32' | 'f32', and for vectors/arrays the scalar type of each lane. */
  scalar: 'u32' | 'i32' | 'f32';
  /** Number of scalar lanes (1 for a scalar, 4 for vec4, 8 for array<vec4<u32>, 2>). */
  lanes: number;
}

export interface UniformBinding {
  name: string;
  binding: number;
  size: number;
  fields: Map<string, UniformField>;
}

/** One entry point of one WGSL file, ready to dispatch. */
export interface Kernel {
  file: string;
  entry: string;
  label: string;
  storage: StorageBinding[];
  /** Storage-texture bindings (texture_storage_2d); dispatch binds a GPUTextureView by name. */
  textures: { name: string; binding: number }[];
  uniform: UniformBinding | null;
  workgroupSize: [number, number, number];
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

interface ParsedFile {
  source: string;
  reflect: WgslReflect;
  module: GPUShaderModule | null;
}

const SCALARS = new Set(['u32', 'i32', 'f32']);

export class KernelError extends Error {}

export class KernelLibrary {
  private files = new Map<string, ParsedFile>();
  private kernels = new Map<string, Kernel>();
  /** Compilation problems Dawn reports asynchronously; the runtime throws them at its next sync point. */
  readonly compileErrors: Promise<string | null>[] = [];

  constructor(private device: GPUDevice, private dir = KERNEL_DIR) {}

  get(file: string, entry: string, overrides: Overrides = {}): Kernel {
    const key = `${file}:${entry}:${JSON.stringify(overrides)}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.build(file, entry, overrides);
      this.kernels.set(key, kernel);
    }
    return kernel;
  }

  /** Number of distinct pipelines built so far (each costs an LLVM compile on lavapipe). */
  get pipelineCount(): number {
    return this.kernels.size;
  }

  source(file: string): string {
    return this.parse(file).source;
  }

  private parse(file: string): ParsedFile {
    let parsed = this.files.get(file);
    if (parsed) return parsed;
    const path = join(this.dir, `${file}.wgsl`);
    let source: string;
    try {
      source = readFileSync(path, 'utf8');
    } catch {
      throw new KernelError(`kernel file not found: kernels/${file}.wgsl`);
    }
    let reflect: WgslReflect;
    try {
      reflect = new WgslReflect(source);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const line = /Line: (\d+)/.exec(message)?.[1];
      throw new KernelError(`kernels/${file}.wgsl${line ? `:${line}` : ''}: ${message}`);
    }
    parsed = { source, reflect, module: null };
    this.files.set(file, parsed);
    return parsed;
  }

  private shaderModule(file: string, parsed: ParsedFile): GPUShaderModule {
    if (parsed.module) return parsed.module;
    const module = this.device.createShaderModule({ label: `kernels/${file}.wgsl`, code: parsed.source });
    if (/\bwgsl\b/.test(process.env.DAWNET_DEBUG ?? '')) {
      process.stderr.write(`dawnet: ---- kernels/${file}.wgsl ----\n${parsed.source}\n`);
    }
    this.compileErrors.push(
      module.getCompilationInfo().then((info) => {
        const errors = info.messages.filter((m) => m.type === 'error');
        if (errors.length === 0) return null;
        return errors.map((m) => `kernels/${file}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
      }),
    );
    parsed.module = module;
    return module;
  }

  private build(file: string, entry: string, overrides: Overrides): Kernel {
    const parsed = this.parse(file);
    const fn = parsed.reflect.entry.compute.find((e) => e.name === entry);
    if (!fn) {
      const names = parsed.reflect.entry.compute.map((e) => e.name).join(', ');
      throw new KernelError(`kernels/${file}.wgsl has no compute entry point '${entry}' (it has: ${names})`);
    }
    const declared = new Map(parsed.reflect.overrides.map((o) => [o.name, o]));
    for (const name of Object.keys(overrides)) {
      if (!declared.has(name)) throw new KernelError(`kernels/${file}.wgsl declares no override '${name}'`);
    }
    const storage: StorageBinding[] = [];
    const textures: Kernel['textures'] = [];
    let uniform: UniformBinding | null = null;
    const entries: GPUBindGroupLayoutEntry[] = [];
    for (const res of fn.resources) {
      if (res.group !== 0) throw new KernelError(`kernels/${file}.wgsl: ${res.name} must be in @group(0)`);
      if (res.resourceType === 0) {
        uniform = { name: res.name, binding: res.binding, size: res.size, fields: uniformFields(res.type) };
        entries.push({ binding: res.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
      } else if (res.resourceType === 1) {
        const readOnly = res.access !== 'read_write';
        storage.push({ name: res.name, binding: res.binding, readOnly, elementBytes: elementBytes(res.type) });
        entries.push({
          binding: res.binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: readOnly ? 'read-only-storage' : 'storage' },
        });
      } else if (res.resourceType === 5 && res.type.name === 'texture_storage_2d') {
        const access = ({ read: 'read-only', write: 'write-only', read_write: 'read-write' } as const)[res.access as 'read' | 'write' | 'read_write'];
        const format = (res.type as { format?: { name: string } | null }).format?.name as GPUTextureFormat;
        textures.push({ name: res.name, binding: res.binding });
        entries.push({ binding: res.binding, visibility: GPUShaderStage.COMPUTE, storageTexture: { access, format, viewDimension: '2d' } });
      } else {
        throw new KernelError(`kernels/${file}.wgsl: binding ${res.name} is neither storage, uniform nor a 2-D storage texture`);
      }
    }
    const label = `${file}.wgsl:${entry}`;
    const layout = this.device.createBindGroupLayout({ label, entries });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: this.device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
      compute: { module: this.shaderModule(file, parsed), entryPoint: entry, constants: overrides },
    });
    return { file, entry, label, storage, textures, uniform, workgroupSize: workgroupSize(fn, overrides), pipeline, layout };
  }
}

interface ReflectedType {
  name: string;
  size: number;
  format?: ReflectedType | null;
  count?: number;
  members?: { name: string; offset: number; size: number; type: ReflectedType }[] | null;
}

function elementBytes(type: ReflectedType): number {
  return type.format ? Math.max(4, type.format.size) : 4;
}

function uniformFields(type: ReflectedType): Map<string, UniformField> {
  const fields = new Map<string, UniformField>();
  for (const m of type.members ?? []) {
    let scalar = m.type.name;
    let lanes = 1;
    if (m.type.name.startsWith('vec') && m.type.format) {
      scalar = m.type.format.name;
      lanes = Number(m.type.name.slice(3, 4));
    } else if (m.type.name === 'array' && m.type.format) {
      const inner = m.type.format;
      scalar = inner.format ? inner.format.name : inner.name;
      // Uniform arrays have 16-byte strides, so only vec4 elements pack without holes.
      if (inner.name !== 'vec4') throw new KernelError(`uniform array ${m.name} must hold vec4 elements`);
      lanes = 4 * (m.type.count ?? 0);
    }
    if (!SCALARS.has(scalar)) throw new KernelError(`uniform field ${m.name} has unsupported type ${m.type.name}`);
    fields.set(m.name, { name: m.name, offset: m.offset, scalar: scalar as UniformField['scalar'], lanes });
  }
  return fields;
}

function workgroupSize(
  fn: { workgroupSize: number[] | null; attributes: { name: string; value: unknown }[] | null },
  overrides: Overrides,
): [number, number, number] {
  const size: [number, number, number] = [1, 1, 1];
  const reflected = fn.workgroupSize ?? [1, 1, 1];
  const attr = fn.attributes?.find((a) => a.name === 'workgroup_size');
  const names = Array.isArray(attr?.value) ? (attr.value as unknown[]) : [];
  for (let i = 0; i < 3; i++) {
    const name = names[i];
    size[i] = typeof name === 'string' && name in overrides ? overrides[name]! : (reflected[i] ?? 1);
  }
  return size;
}
