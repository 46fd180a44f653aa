// Explicit ownership of GPU memory. Tensors created inside `scope(fn)` are disposed when it ends,
// except what fn returns or marks with keep(); the autograd graph recorded inside is released too.
// Nothing is left to the garbage collector.

export interface Disposable {
  dispose(): void;
}

interface Frame {
  owned: Set<Disposable>;
}

const frames: Frame[] = [];

/** Registers a new tensor or graph node with the innermost scope, if any. */
export function track(item: Disposable): void {
  frames[frames.length - 1]?.owned.add(item);
}

/** Removes an item from every open scope, so it outlives them. */
export function untrack(item: Disposable): void {
  for (const frame of frames) frame.owned.delete(item);
}

/**
 * Runs fn and disposes every tensor it created that it does not return (a tensor, or tensors in
 * an array or a plain object). Async functions are awaited before disposal; do not interleave
 * two async scopes.
 */
export function scope<T>(fn: () => T): T {
  const frame: Frame = { owned: new Set() };
  frames.push(frame);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    close(frame, undefined);
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(
      (value: unknown) => (close(frame, value), value),
      (err: unknown) => {
        close(frame, undefined);
        throw err;
      },
    ) as T;
  }
  close(frame, result);
  return result;
}

function close(frame: Frame, result: unknown): void {
  const index = frames.lastIndexOf(frame);
  if (index >= 0) frames.splice(index, 1);
  const survivors = new Set<unknown>();
  collect(result, survivors);
  const parent = frames[frames.length - 1];
  for (const item of frame.owned) {
    if (survivors.has(item)) parent?.owned.add(item);
    else item.dispose();
  }
}

function collect(value: unknown, into: Set<unknown>): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into);
  } else {
    into.add(value);
  }
}
