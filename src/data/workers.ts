// A pool of worker threads that decode image files (decode-worker.ts), so that decoding runs
// beside the training loop instead of inside it. Tasks queue in order and go to whichever thread
// is free; idle threads are unref'd, so an open pool never keeps Node from exiting.
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Channels } from './decode.js';
import type { DecodeReply, DecodeTask } from './decode-worker.js';

interface Pending {
  task: DecodeTask;
  resolve(reply: DecodeReply): void;
  reject(err: Error): void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  busy: Pending | null;
}

/** Decoding threads to use by default: every core but the one running the main thread. */
export function defaultWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Starts decode-worker in a thread; from TypeScript sources it goes through tsx's loader. */
function spawn(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const worker = new URL('./decode-worker.ts', here).href;
    const tsx = join(dirname(createRequire(here).resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs');
    const boot = `const { register } = await import(${JSON.stringify(pathToFileURL(tsx).href)}); register(); await import(${JSON.stringify(worker)});`;
    return new Worker(boot, { eval: true });
  }
  return new Worker(fileURLToPath(new URL('./decode-worker.js', here)));
}

export class DecodePool {
  private readonly threads: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(readonly size: number = defaultWorkerCount()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`DecodePool: size must be a positive integer, got ${size}`);
  }

  /** Decodes files into size × size CHW samples with `channels` channels, back to back. */
  decode(paths: string[], size: number, channels: Channels): Promise<DecodeReply> {
    if (this.closed) return Promise.reject(new Error('DecodePool: the pool was closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, paths, size, channels }, resolve, reject });
      this.pump();
    });
  }

  /** Stops every thread; pending decodes are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('DecodePool: closed before the decode ran'));
    await Promise.all(this.threads.splice(0).map((t) => t.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let thread = this.threads.find((t) => t.ready && !t.busy);
      if (!thread) {
        if (this.threads.length < this.size) this.start();
        return;
      }
      const job = this.queue.shift()!;
      thread.busy = job;
      thread.worker.ref();
      thread.worker.postMessage(job.task);
    }
  }

  private start(): void {
    const thread: Thread = { worker: spawn(), ready: false, busy: null };
    this.threads.push(thread);
    thread.worker.on('message', (message: DecodeReply | 'ready') => {
      if (message === 'ready') thread.ready = true;
      else {
        const job = thread.busy;
        thread.busy = null;
        job?.resolve(message);
      }
      thread.worker.unref();
      this.pump();
    });
    const fail = (err: Error) => {
      const index = this.threads.indexOf(thread);
      if (index >= 0) this.threads.splice(index, 1);
      thread.busy?.reject(new Error(`a decoding thread failed: ${err.message}`));
      thread.busy = null;
      if (!thread.ready) {
        // The thread could not even start: every queued decode would wait forever.
        for (const p of this.queue.splice(0)) p.reject(new Error(`decoding threads cannot start: ${err.message}`));
      } else this.pump();
    };
    thread.worker.on('error', fail);
    thread.worker.on('exit', (code) => {
      if (!this.closed && code !== 0) fail(new Error(`exited with code ${code}`));
    });
  }
}

let shared: DecodePool | null = null;
let sharedSize: number | undefined;

/** The process-wide pool that folder data sets share (created on first use). */
export function sharedDecodePool(): DecodePool {
  return (shared ??= new DecodePool(sharedSize));
}

/**
 * Sets the shared pool's thread count (--workers), before a command opens its data: a pool of
 * another size is closed (its pending decodes rejected) and the next decode starts a new one.
 */
export function setDecodeThreads(size: number): void {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`decoding threads must be a positive integer, got ${size}`);
  sharedSize = size;
  if (shared && shared.size !== size) {
    void shared.close();
    shared = null;
  }
}

/** Terminates the shared pool's threads (a later decode starts a new pool). */
export async function closeSharedDecodePool(): Promise<void> {
  const pool = shared;
  shared = null;
  await pool?.close();
}
