// A decoding thread of the DecodePool (workers.ts): reads image files and decodes them into
// square CHW uint8 samples, so the main thread (which feeds the GPU) never decodes.
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { decodeSample, type Channels } from './decode.js';
import { reasonOf } from './errors.js';

export interface DecodeTask {
  id: number;
  paths: string[];
  size: number;
  channels: Channels;
}

export interface DecodeReply {
  id: number;
  /** paths.length samples back to back; those that failed are zeros. */
  pixels: Uint8Array;
  /** Source width and height of each sample (0 for failures). */
  sizes: Int32Array;
  failures: [position: number, reason: string][];
}

function run(task: DecodeTask): DecodeReply {
  const bytes = task.channels * task.size * task.size;
  const pixels = new Uint8Array(task.paths.length * bytes);
  const sizes = new Int32Array(task.paths.length * 2);
  const failures: [number, string][] = [];
  task.paths.forEach((path, k) => {
    try {
      const { width, height } = decodeSample(readFileSync(path), task.size, task.channels, pixels, k * bytes);
      sizes[2 * k] = width;
      sizes[2 * k + 1] = height;
    } catch (err) {
      failures.push([k, reasonOf(err)]);
    }
  });
  return { id: task.id, pixels, sizes, failures };
}

const port = parentPort;
if (port) {
  port.on('message', (task: DecodeTask) => {
    const reply = run(task);
    port.postMessage(reply, [reply.pixels.buffer as ArrayBuffer, reply.sizes.buffer as ArrayBuffer]);
  });
  port.postMessage('ready');
}
