// Checkpoints (safetensors files with PyTorch names) and the safetensors reader and writer.
export {
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointMetadata,
  type CheckpointOptimizer,
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
