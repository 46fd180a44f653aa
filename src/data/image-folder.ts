// torchvision.datasets.ImageFolder: root/<class>/**/*.png|jpg|jpeg, class names sorted into
// indices 0…K−1. Every problem with the layout is a DataError raised before any image is decoded.
import { join, resolve } from 'node:path';
import { DataError, stderrWarning } from './errors.js';
import { FileDataset, markVisited, requireFolder, subfolders, walkImages, warnIgnored, type FileEntry, type FolderListing, type FolderOptions } from './files.js';

/** Lists root/<class>/… without decoding anything; throws DataError for an unusable layout. */
export function listImageFolder(root: string, options: Pick<FolderOptions, 'onWarning'> = {}): FolderListing {
  const dir = resolve(root);
  requireFolder(dir, 'image folder');
  const classes = subfolders(dir);
  if (classes.length === 0) {
    const loose = walkImages(dir).images.length;
    const hint = loose > 0 ? ` (it holds ${loose} image(s) outside class folders; for images without labels use an unlabeled folder)` : '';
    throw new DataError(`no class folders in ${dir}: expected ${dir}/<class>/<image>.png|jpg|jpeg${hint}`);
  }
  const files: FileEntry[] = [];
  const labels: number[] = [];
  const others: string[] = [];
  // One set for the whole listing: a link inside one class to the root or to another class adds nothing.
  const visited = new Set<string>();
  for (const name of ['', ...classes]) markVisited(visited, join(dir, name));
  classes.forEach((name, label) => {
    const found = walkImages(join(dir, name), visited);
    if (found.images.length === 0) throw new DataError(`class folder ${join(dir, name)} has no .png/.jpg/.jpeg images`);
    files.push(...found.images);
    for (let k = 0; k < found.images.length; k++) labels.push(label);
    others.push(...found.others);
  });
  warnIgnored(dir, others, options.onWarning ?? stderrWarning);
  return { kind: 'image-folder', roots: [dir], files, labels: Int32Array.from(labels), classes };
}

/** An ImageFolder decoded on every read (in worker threads); see openDataset for the cached form. */
export function imageFolder(root: string, options: FolderOptions): FileDataset {
  return new FileDataset(listImageFolder(root, options), options);
}
