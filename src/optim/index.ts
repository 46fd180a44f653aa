// torch.optim for dawnet: fused SGD / Adam / AdamW over flat arenas, and learning-rate schedules.
export { Optimizer, type ArenaOptions, type Hyperparameters, type OptimizerStateDict, type ParamGroup, type ParamState, type ParamsInput } from './optimizer.js';
export { SGD, type SGDOptions, type SGDHyperparameters } from './sgd.js';
export { Adam, AdamW, type AdamOptions, type AdamHyperparameters } from './adam.js';
export { constant, cosine, LRScheduler, lookupTable, multiStep, polynomialWarmup, stepDecay, type HasParamGroups, type PolynomialWarmupOptions, type Schedule } from './schedules.js';
