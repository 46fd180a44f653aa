// Images without labels: every .png/.jpg/.jpeg under one or more roots, at any depth (e.g.
// {dataroot}/0/img_1.png), the roots concatenated in the order given. Labels are −1.
import { resolve } from 'node:path';
import { DataError, stderrWarning } from './errors.js';
import { FileDataset, requireFolder, walkImages, warnIgnored, type FileEntry, type FolderListing, type FolderOptions } from './files.js';

/** Lists every image under the roots; throws DataError for a missing root or one with no images. */
export function listUnlabeledFolders(roots: string | readonly string[], options: Pick<FolderOptions, 'onWarning'> = {}): FolderListing {
  const dirs = (typeof roots === 'string' ? [roots] : [...roots]).map((r) => resolve(r));
  if (dirs.length === 0) throw new DataError('no unlabeled image folders were given');
  const files: FileEntry[] = [];
  const visited = new Set<string>();
  for (const dir of dirs) {
    requireFolder(dir, 'image folder');
    const found = walkImages(dir, visited);
    if (found.images.length === 0) throw new DataError(`no .png/.jpg/.jpeg images under ${dir}`);
    files.push(...found.images);
    warnIgnored(dir, found.others, options.onWarning ?? stderrWarning);
  }
  return { kind: 'unlabeled-folder', roots: dirs, files, labels: new Int32Array(files.length).fill(-1), classes: [] };
}

/** Unlabeled images decoded on every read (in worker threads); see openDataset for the cached form. */
export function unlabeledFolder(roots: string | readonly string[], options: FolderOptions): FileDataset {
  return new FileDataset(listUnlabeledFolders(roots, options), options);
}
