// Checkpoints (safetensors files with PyTorch names) and the safetensors reader and writer.
export {
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  loadCheckpoint,
  readCheckpointFile,
  saveCheckpoint,
  type CheckpointFile,
  type CheckpointMetadata,
  type CheckpointOptimizer,
  type CheckpointSource,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  type SaveCheckpointOptions,
} from './checkpoint.js';
export {
  parseSafetensors,
  planSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensors,
  type SafetensorsContents,
  type SafetensorsData,
  type SafetensorsDType,
  type SafetensorsTensor,
  type TensorSpec,
} from './safetensors.js';
export { checkClassNames } from './classes.js';
export { writeFileAtomic, writeFileAtomicSync } from '../atomic-file.js';
