// The backbones the training commands accept by name (--model), built for the data at hand:
// its channel count, its image size (ResNet takes the CIFAR stem up to 64 px) and the number of
// outputs (4 rotations, or the classes). Also which stage is the classifier, so that a
// pretrained backbone can be loaded without it and a new head trained in its place.
import { AlexNet } from '../../models/alexnet.js';
import { NIN } from '../../models/nin.js';
import { ResNet, resnet18, resnet34, resnet50 } from '../../models/resnet.js';
import type { FeatureNet } from '../nn/feature-net.js';
import type { Generator } from '../random.js';

export const MODEL_NAMES = ['nin', 'resnet18', 'resnet34', 'resnet50', 'alexnet'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ZooOptions {
  numClasses: number;
  inChannels: number;
  imageSize: number;
  /** NIN's stages (3 to 5); 4 as RotNet's CIFAR experiments. */
  ninStages?: number;
  generator?: Generator;
}

export function buildModel(name: ModelName, { numClasses, inChannels, imageSize, ninStages = 4, generator }: ZooOptions): FeatureNet {
  const init = generator ? { generator } : {};
  switch (name) {
    case 'nin':
      return new NIN({ numClasses, inChannels, stages: ninStages, ...init });
    case 'alexnet':
      return new AlexNet({ numClasses, inChannels, imageSize, ...init });
    case 'resnet18':
    case 'resnet34':
    case 'resnet50': {
      const make = { resnet18, resnet34, resnet50 }[name];
      return make({ numClasses, inChannels, stem: imageSize <= 64 ? 'cifar' : 'imagenet', ...init });
    }
  }
}

/** The state-dict prefix of a model's classifier, which a new task replaces. */
export function classifierPrefix(model: FeatureNet): string {
  return model instanceof ResNet ? 'fc.' : 'classifier.';
}

/** The last stage: the one that maps features to outputs. */
export function classifierStage(model: FeatureNet): string {
  return model.stageNames[model.stageNames.length - 1]!;
}
