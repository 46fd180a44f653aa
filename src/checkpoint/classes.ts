// A classifier is only scored on, or teaches, data with the classes it was trained on: the same
// names in the same order (label k means the same thing on both sides). Comparing counts alone
// lets a model of [airplane, cat, ship] be scored on [bird, dog, frog].
import { CheckpointError } from './checkpoint.js';

const listed = (names: readonly string[]): string => `[${names.slice(0, 10).join(', ')}${names.length > 10 ? `, … (${names.length} in all)` : ''}]`;

/**
 * Throws CheckpointError unless `data` has the classes the checkpoint at `path` was trained on
 * (`trained`; a checkpoint that records none is compared by count).
 */
export function checkClassNames(path: string, trained: { numClasses: number; classNames?: readonly string[] }, data: readonly string[], dataWhere: string): void {
  if (data.length === 0) throw new CheckpointError(`${dataWhere} has no class names (unlabeled images); ${path} needs labeled data with the classes ${listed(trained.classNames ?? [])}`);
  const names = trained.classNames ?? [];
  if (names.length === 0) {
    if (trained.numClasses !== data.length) throw new CheckpointError(`${path} has ${trained.numClasses} classes, ${dataWhere} has ${data.length}`);
    return;
  }
  const first = names.findIndex((n, k) => data[k] !== n);
  if (first < 0 && names.length === data.length) return;
  const where = first >= 0 ? ` (class ${first} is '${names[first]}' there, '${data[first] ?? 'missing'}' here)` : '';
  throw new CheckpointError(`${path} was trained on the classes ${listed(names)}, but ${dataWhere} has ${listed(data)}${where}; use data with the same class folders`);
}
