// torch.nn for dawnet: the Module base, layers and parameter initialisation.
export { Module, type StateDict } from './module.js';
export { FeatureNet, type Stage } from './feature-net.js';
export { Linear } from './linear.js';
export { Conv2d, ConvTranspose2d, type ConvOptions, type ConvTransposeOptions } from './conv.js';
export { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from './normalization.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, type PoolOptions } from './pooling.js';
export { ReLU, LeakyReLU, Tanh, Sigmoid } from './activation.js';
export { Dropout } from './dropout.js';
export { Sequential, Flatten, Identity } from './container.js';
export * as init from './init.js';
