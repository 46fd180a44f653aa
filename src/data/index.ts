// dawnet's data pipeline (torch.utils.data and torchvision's datasets and transforms, on the GPU):
// readers, the packed cache, the DataLoader and GPU augmentation.
export { DataError, SkipLog, type WarningHandler } from './errors.js';
export { MemoryDataset, Subset, sampleBytes, type Dataset, type ReadFailure } from './dataset.js';
export { decodeImage, decodeSample, writeSample, convertChannels, headerChannels, sniffFormat, isImagePath, IMAGE_EXTENSIONS, type Channels, type DecodedImage } from './decode.js';
export { FileDataset, type FolderOptions, type FolderListing, type FileEntry } from './files.js';
export { imageFolder, listImageFolder } from './image-folder.js';
export { unlabeledFolder, listUnlabeledFolders } from './unlabeled-folder.js';
export { idxDataset, readIdx, findIdxFiles, type IdxOptions } from './idx.js';
export { cifarDataset, findCifar, CIFAR10_CLASSES, type CifarOptions } from './cifar.js';
export { writePack, openPack, readPackIndex, type PackIndex, type SourceSpec, type WriteOptions, type OpenPackOptions } from './pack.js';
export { builtinRoot, fashionMnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, BUILTIN_ROOT, DATA_DIR } from './builtin.js';
export { openDataset, describeSource, defaultCacheRoot, type OpenOptions } from './open.js';
export { DataLoader, JointLoader, labeledSubset, shuffleInPlace, type Batch, type HostBatch, type LoaderOptions, type SubsetOptions } from './loader.js';
export {
  Augment,
  augmentReference,
  rotationBatch,
  randomRotation,
  randomCrop,
  randomResizedCrop,
  randomHorizontalFlip,
  randomGamma,
  normalize,
  type AugmentOptions,
  type AugmentResult,
  type SampleParams,
} from './augment.js';
export { DecodePool, sharedDecodePool, closeSharedDecodePool, defaultWorkerCount } from './workers.js';
