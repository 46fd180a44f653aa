// The model zoo; models/registry.ts builds each by the name the CLI and checkpoints use.
export { ResNet, resnet18, resnet34, resnet50, type ResNetOptions } from './resnet.js';
export { AlexNet, type AlexNetOptions } from './alexnet.js';
export { NIN, NinBlock, type NinOptions } from './nin.js';
export { DcganGenerator, DcganDiscriminator, GanClassifier, type DcganOptions } from './dcgan.js';
export { LinearProbe, MlpHead, ConvHead, type FeatureShape } from './heads.js';
export { buildModel, checkSpec, classifierPrefix, featureBlocks, MODEL_NAMES, checkpointSpec, completeSpec, inferSpec, type CheckpointSpec, type ModelName, type ModelShape, type ModelSpec } from './registry.js';
