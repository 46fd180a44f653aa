// The model registry: every row builds from a checkpoint's description, its classifier prefix
// names real parameters (and only the classifier's), its feature blocks are stages that give
// feature maps, descriptions it cannot build are refused with a reason, and a bare state dict's
// names and shapes (dawnet's or the reference RotNet code's) give back its description.
import { describe, expect, it } from 'vitest';
import { buildModel, checkSpec, classifierPrefix, featureBlocks, inferSpec, MODEL_NAMES, type ModelName, type ModelSpec } from '../models/registry.js';
import { CheckpointError } from '../src/checkpoint/checkpoint.js';
import { toRotNetName } from '../src/checkpoint/rotnet-names.js';
import { modelSpecOf } from '../src/cli/common.js';
import type { Dataset } from '../src/data/dataset.js';
import { noGrad, scope, zeros } from '../src/index.js';

const specOf = (model: ModelName, imageSize: number, extra: Partial<ModelSpec> = {}): ModelSpec => ({
  model,
  ninStages: 3,
  numClasses: 5,
  inChannels: 3,
  imageSize,
  normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
  classNames: ['a', 'b', 'c', 'd', 'e'],
  ...extra,
});

// Small configurations of every row (ResNet-34 and -50 share ResNet-18's row builder).
const cases: [ModelName, number, Partial<ModelSpec>?][] = [['nin', 16], ['resnet18', 16, { stem: 'cifar' }], ['alexnet', 64], ['dcgan-classifier', 32, { ndf: 4 }], ['vae', 64, { latentDim: 8, encoderDepth: 'conv5' }]];

describe('models/registry', () => {
  for (const [name, size, extra] of cases) {
    it(`${name}: builds from its description; classifier prefix and feature blocks fit the network`, () => {
      const spec = specOf(name, size, extra);
      const net = buildModel(spec, 1);
      try {
        const params = net.namedParameters().map(([n]) => n);
        const head = params.filter((n) => n.startsWith(classifierPrefix(spec)));
        expect(head.length).toBeGreaterThan(0);
        expect(head.length).toBeLessThan(params.length);
        const blocks = featureBlocks(spec, net);
        expect(blocks.length).toBeGreaterThan(0);
        const shapes = noGrad(() => scope(() => Object.values(net.features(zeros([1, 3, size, size]), blocks)).map((t) => t.shape.length)));
        expect(shapes.every((rank) => rank === 4)).toBe(true);
        expect(noGrad(() => scope(() => net.forward(zeros([2, 3, size, size])).shape))).toEqual([2, 5]);
        const state = new Map(net.namedState().map(([n, t]) => [n, t.shape]));
        const { model, ninStages, numClasses, inChannels, ndf, stem, latentDim, encoderDepth } = spec;
        const described = { model, numClasses, inChannels, ninStages: name === 'nin' ? ninStages : 0, ...(name === 'nin' ? { useAvgOnConv3: false } : {}), ...(ndf ? { ndf } : {}), ...(stem ? { stem } : {}), ...(latentDim ? { latentDim, encoderDepth } : {}) };
        expect(inferSpec(state, 'x.pth')).toEqual(described);
        if (name === 'nin' || name === 'alexnet') {
          const reference = new Map([...state].map(([n, s]) => [toRotNetName(n, net.stageNames), s]));
          expect(inferSpec(reference, 'x.pth')).toEqual(described);
        }
      } finally {
        net.dispose();
      }
    });
  }

  it("nin: the conv3 pool is the description's; RotNet's CIFAR NIN-4 gives 16/8/8/8 px blocks at 32 px, old descriptions keep the pool", () => {
    const blocksOf = (extra: Partial<ModelSpec>) => {
      const net = buildModel(specOf('nin', 32, { ninStages: 4, ...extra }), 1);
      try {
        return noGrad(() => scope(() => Object.fromEntries(Object.entries(net.features(zeros([1, 3, 32, 32]), featureBlocks(specOf('nin', 32), net))).map(([k, t]) => [k, t.shape]))));
      } finally {
        net.dispose();
      }
    };
    // FeatureLearningRotNet config/CIFAR10_RotNet_NIN4blocks.py: use_avg_on_conv3 = False.
    expect(blocksOf({ useAvgOnConv3: false })).toEqual({ conv1: [1, 96, 16, 16], conv2: [1, 192, 8, 8], conv3: [1, 192, 8, 8], conv4: [1, 192, 8, 8] });
    // A description without the field comes from a checkpoint written when the pool was always there.
    expect(blocksOf({})).toEqual({ conv1: [1, 96, 16, 16], conv2: [1, 192, 8, 8], conv3: [1, 192, 4, 4], conv4: [1, 192, 4, 4] });
    const data = { channels: 3, imageSize: 32, classes: ['a', 'b'] } as unknown as Dataset;
    const normalize = { mean: [0, 0, 0], std: [1, 1, 1] };
    expect(modelSpecOf({ model: 'nin', ninStages: 4 }, data, 4, normalize).useAvgOnConv3).toBe(false);
    expect(modelSpecOf({ model: 'nin', ninStages: 4, useAvgOnConv3: true }, data, 4, normalize).useAvgOnConv3).toBe(true);
    expect(modelSpecOf({ model: 'resnet18', ninStages: 4 }, data, 4, normalize)).not.toHaveProperty('useAvgOnConv3');
  });

  it('--model offers every row but the classifier made from a DCGAN checkpoint', () => {
    expect(MODEL_NAMES).toEqual(['nin', 'resnet18', 'resnet34', 'resnet50', 'alexnet']);
  });

  it('refuses what it cannot build, with the reason', () => {
    expect(() => checkSpec(specOf('nin', 16, { ninStages: 6 }))).toThrow(/3, 4 or 5 stages/);
    expect(() => checkSpec(specOf('alexnet', 32))).toThrow(/at least 63 px/);
    expect(() => checkSpec(specOf('vae', 72))).toThrow(/at least 64 px and a multiple of 16/);
    const probeHead = new Map([['conv1.weight', [4, 3, 5, 5]]]);
    expect(() => inferSpec(probeHead, 'x.pth')).toThrow(CheckpointError);
    expect(() => inferSpec(probeHead, 'x.pth')).toThrow(/x\.pth: .*none of them[^]*resnet18: conv1\.weight/);
    expect(() => inferSpec(probeHead, 'x.pth', 'vgg')).toThrow(/unknown model 'vgg'/);
    // --model narrows the candidates to one: the error lists what that model needs.
    expect(() => inferSpec(probeHead, 'x.pth', 'alexnet')).toThrow(/--model names it\); expected one of:\n  alexnet: conv1\.0\.weight \(11×11\)[^\n]*$/);
  });
});
