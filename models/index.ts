// The model zoo, by the names the CLI accepts.
export { ResNet, resnet18, resnet34, resnet50, type ResNetOptions } from './resnet.js';
export { AlexNet, type AlexNetOptions } from './alexnet.js';
export { NIN, NinBlock, type NinOptions } from './nin.js';
export { DcganGenerator, DcganDiscriminator, GanClassifier, type DcganOptions } from './dcgan.js';
export { LinearProbe, MlpHead, ConvHead, type FeatureShape } from './heads.js';
