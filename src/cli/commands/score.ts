// score and score:worker — the teacher's scoring pass of teacher → student as a step of its own:
// `score` ranks the unlabeled images per class (in this process, or as the coordinator of a
// BullMQ queue with --queue) and writes the ranking to its run folder; `score:worker` serves a
// queue's shards on this machine's device. train:student runs `score` or reuses its ranking.
import { UsageError } from '../args.js';
import { defineCommand, outfOf } from '../common.js';
import { dataFlags, netModelFlag, requestedChannels, runFlags, scoreFlags, unlabeledFlags } from '../flags.js';
import { checkReachable } from '../../score/queue.js';
import { scoreStep } from '../../score/step.js';
import { serveShards } from '../../score/worker.js';
import { openSplits } from '../../train/splits.js';

export interface ScoreResult {
  outf: string;
  images: number;
  ranked: number;
}

export const score = defineCommand(
  {
    name: 'score',
    summary: "Teacher → student's scoring step: rank the unlabeled images per class by the teacher (top K per class among each image's top P classes), here or on a queue of workers.",
    flags: {
      ...dataFlags,
      ...unlabeledFlags,
      ...netModelFlag,
      ...scoreFlags,
      batchSize: { type: 'int', default: 128, help: 'images per forward pass of the teacher: every worker runs the same batches, so a shard gives the same scores anywhere' },
      outf: { ...runFlags.outf, help: 'output folder: ranking/, ranking.json, metrics.jsonl (a line per shard), args.json (default: runs/score)' },
      resume: { type: 'string', help: 'a score run folder to continue: only the shards it lacks are scored' },
    },
    epilog:
      'Writes <outf>/ranking/<class>.jsonl (rank, image, index, score) and <outf>/ranking.json.\n' +
      'Example: npm run score -- --teacher runs/finetune/net_best.safetensors --dataroot ~/pets --imageSize 64 --queue redis://10.0.0.5:6379',
  },
  async (a): Promise<ScoreResult | null> => {
    if (!a.teacher) throw new UsageError('score: --teacher is required (a classifier checkpoint)');
    const outf = outfOf('score', a);
    // An unreachable queue is said before any data is opened or packed.
    if (a.queue) await checkReachable(a.queue);
    const splits = await openSplits(a.dataroot, { imageSize: a.imageSize, channels: requestedChannels(a.channels) });
    const extra = a.unlabeledRoot ? await openSplits(a.unlabeledRoot, { imageSize: splits.train.imageSize, channels: splits.train.channels, unlabeled: true }) : null;
    try {
      const r = await scoreStep(
        { ...a, teacher: a.teacher, outf },
        {
          train: splits.train,
          scored: extra ? extra.train : splits.train,
          where: extra ? { root: a.unlabeledRoot, unlabeled: true } : { ...(a.dataroot === undefined ? {} : { root: a.dataroot }), unlabeled: false },
          dataName: `--dataroot ${a.dataroot ?? '(the built-in set)'}`,
        },
        { ...a, outf },
      );
      return r && { outf, images: r.meta.data.length, ranked: r.ranked.reduce((n, l) => n + l.length, 0) };
    } finally {
      await splits.close();
      await extra?.close();
    }
  },
);

export const scoreWorker = defineCommand(
  {
    name: 'score:worker',
    summary: "Serve a score queue: take shards, score them on this machine's device, return each shard's per-class candidates.",
    flags: {
      queue: { type: 'string', help: 'redis://HOST:PORT of the queue (required)' },
      queueName: scoreFlags.queueName,
      teacher: { type: 'string', help: "this machine's copy of the teacher (default: the path each job names); a job whose teacher has another SHA-256 is refused" },
      dataroot: { type: 'string', help: "this machine's path to the scored images (default: the path each job names)" },
      lockDuration: { type: 'int', default: 30000, help: 'milliseconds a shard stays locked without news from its worker: after it, a dead worker’s shard goes to another' },
      idle: { type: 'int', default: 0, help: 'exit after this many seconds without a shard (0: wait for ever; a Kubernetes Job sets it)' },
    },
    epilog: 'Example: npm run score:worker -- --queue redis://10.0.0.5:6379 --teacher /models/teacher.safetensors --idle 60',
  },
  async (a): Promise<{ shards: number }> => {
    if (!a.queue) throw new UsageError('score:worker: --queue is required (redis://HOST:PORT)');
    const log = (line: string) => process.stderr.write(`${line}\n`);
    return { shards: await serveShards({ queue: a.queue, queueName: a.queueName, teacher: a.teacher, dataroot: a.dataroot, lockMs: a.lockDuration, idleSeconds: a.idle, log }) };
  },
);
