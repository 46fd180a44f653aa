"""Writes dawnet's golden fixtures with PyTorch (float32, CPU, fixed seeds): safetensors files
whose tensors are the inputs, outputs and gradients torch computes, and whose metadata says
what each case runs. test/golden*.test.ts replays every case in dawnet and compares.

    /usr/bin/python3 scripts/golden/generate.py                 # the committed fixtures (npm run golden)
    /usr/bin/python3 scripts/golden/generate.py --models resnet50 --out ~/.cache/dawnet/golden

Families: ops (every op with a torch counterpart: forward and each input's gradient against a
random upstream gradient `dout`), optim (ten steps of SGD/Adam/AdamW on a small MLP), schedules
(torch.optim.lr_scheduler), and one file per whole model (state dict, batch, logits in eval and
train mode, loss, every parameter's gradient, running statistics after the step; computed in
float64, see model_case).
"""

import argparse
from collections import OrderedDict
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import reference_models as rm  # noqa: E402
import safetensors_np as st  # noqa: E402

COMMITTED = os.path.join(os.path.dirname(os.path.dirname(HERE)), "test", "golden", "fixtures")


def save(out_dir, family, tensors, meta):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{family}.safetensors")
    st.save(path, {k: v.detach().contiguous().numpy() for k, v in tensors.items()},
            {"torch": torch.__version__, "cases": json.dumps(meta)})
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path) / 1e6:.2f} MB")


# --- ops -------------------------------------------------------------------------------------------


class OpCases:
    """Each case: named inputs, a torch function of them, the output, and the gradient of
    sum(out * dout) for every float input (dout drawn at random, so backward sees a real upstream)."""

    def __init__(self):
        self.tensors, self.meta = {}, []
        self.gen = torch.Generator().manual_seed(0)

    def randn(self, *shape):
        return torch.randn(tuple(shape), generator=self.gen)

    def positive(self, *shape):
        return 0.5 + 1.5 * torch.rand(*shape, generator=self.gen)

    def prob(self, *shape):
        return 0.05 + 0.9 * torch.rand(*shape, generator=self.gen)

    def nonzero(self, *shape):
        v = 0.1 + torch.rand(*shape, generator=self.gen)
        return torch.where(torch.rand(*shape, generator=self.gen) < 0.5, -v, v)

    def labels(self, n, classes):
        return torch.randint(0, classes, (n,), generator=self.gen, dtype=torch.int32)

    def add(self, fn, args, inputs, run, grads=None):
        cid = f"{len(self.meta):03d}_{fn}"
        leaves = {k: v.clone().requires_grad_(v.is_floating_point() and (grads is None or k in grads)) for k, v in inputs.items()}
        out = run(*leaves.values())
        dout = self.randn(*out.shape)
        wanted = [k for k, v in leaves.items() if v.requires_grad]
        if wanted:
            gs = torch.autograd.grad((out * dout).sum(), [leaves[k] for k in wanted], allow_unused=True)
            for k, g in zip(wanted, gs):
                self.tensors[f"{cid}/grad.{k}"] = g
        for k, v in inputs.items():
            self.tensors[f"{cid}/in.{k}"] = v
        self.tensors[f"{cid}/out"] = out
        self.tensors[f"{cid}/dout"] = dout
        self.meta.append({"id": cid, "fn": fn, "args": args, "inputs": list(inputs), "grads": wanted})
        return leaves, out


def op_cases():
    c = OpCases()
    x = c.randn
    for name, f, draw in [("neg", torch.neg, x), ("exp", torch.exp, x), ("log", torch.log, c.positive),
                          ("sqrt", torch.sqrt, c.positive), ("relu", F.relu, c.nonzero),
                          ("sigmoid", torch.sigmoid, x), ("tanh", torch.tanh, x)]:
        c.add(name, {}, {"x": draw(3, 17)}, lambda x, f=f: f(x))
    # NaN passes through relu and leaky_relu, as in torch (a GPU's max(NaN, 0) may give 0).
    c.add("relu", {}, {"x": torch.tensor([float("nan"), -1.5, 0.0, 2.0])}, F.relu, grads=[])
    c.add("leakyRelu", {"slope": 0.2}, {"x": torch.tensor([float("nan"), -1.5, 2.0])}, lambda x: F.leaky_relu(x, 0.2), grads=[])
    for e, draw in [(3, x), (0.5, c.positive), (-1.5, c.positive), (2, x)]:
        c.add("pow", {"exponent": e}, {"x": draw(5, 13)}, lambda x, e=e: torch.pow(x, e))
    c.add("leakyRelu", {"slope": 0.2}, {"x": c.nonzero(4, 9)}, lambda x: F.leaky_relu(x, 0.2))
    c.add("leakyRelu", {"slope": 0.01}, {"x": c.nonzero(65)}, lambda x: F.leaky_relu(x))
    for name, f in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)]:
        c.add(name, {}, {"a": x(2, 3, 5), "b": x(3, 1)}, lambda a, b, f=f: f(a, b))
    c.add("div", {}, {"a": x(2, 3, 5), "b": c.nonzero(5)}, lambda a, b: a / b)
    c.add("add", {}, {"a": x(1, 4), "b": x(3, 1)}, lambda a, b: a + b)
    c.add("mulScalar", {"scalar": -2.5}, {"a": x(7, 3)}, lambda a: a * -2.5)
    c.add("sum", {"dim": [0, 2], "keepdim": True}, {"x": x(3, 4, 5)}, lambda x: x.sum([0, 2], keepdim=True))
    c.add("sum", {}, {"x": x(3, 17)}, lambda x: x.sum())
    c.add("mean", {"dim": [1]}, {"x": x(3, 4, 5)}, lambda x: x.mean(1))
    c.add("mean", {}, {"x": x(130)}, lambda x: x.mean())
    c.add("max", {"dim": [-1]}, {"x": x(6, 17)}, lambda x: x.amax(-1))
    c.add("max", {"dim": [0], "keepdim": True}, {"x": x(5, 3, 2)}, lambda x: x.amax(0, keepdim=True))
    c.add("matmul", {}, {"a": x(5, 7), "b": x(7, 3)}, lambda a, b: a @ b)
    c.add("matmul", {}, {"a": x(2, 5, 17), "b": x(2, 17, 3)}, lambda a, b: a @ b)
    c.add("matmul", {}, {"a": x(3, 5, 7), "b": x(7, 65)}, lambda a, b: a @ b)
    c.add("matmul", {"transposeA": True}, {"a": x(2, 7, 5), "b": x(2, 7, 3)}, lambda a, b: a.transpose(-1, -2) @ b)
    c.add("matmul", {"transposeB": True}, {"a": x(4, 9), "b": x(6, 9)}, lambda a, b: a @ b.t())
    c.add("linear", {}, {"x": x(4, 7), "w": x(5, 7), "b": x(5)}, F.linear)
    c.add("linear", {}, {"x": x(2, 3, 130), "w": x(17, 130)}, F.linear)
    c.add("transpose", {}, {"x": x(2, 3, 5)}, lambda x: x.transpose(-1, -2))
    c.add("softmax", {"dim": -1}, {"x": x(3, 5, 7)}, lambda x: F.softmax(x, -1))
    c.add("softmax", {"dim": 1}, {"x": x(3, 17, 2)}, lambda x: F.softmax(x, 1))
    c.add("logSoftmax", {"dim": -1}, {"x": 4 * x(5, 130)}, lambda x: F.log_softmax(x, -1))
    c.add("logSoftmax", {"dim": 0}, {"x": x(7, 3)}, lambda x: F.log_softmax(x, 0))
    c.add("crossEntropy", {}, {"x": x(6, 5), "labels": c.labels(6, 5)}, lambda x, labels: F.cross_entropy(x, labels.long()))
    c.add("crossEntropy", {}, {"x": 3 * x(3, 130), "labels": c.labels(3, 130)}, lambda x, labels: F.cross_entropy(x, labels.long()))
    c.add("binaryCrossEntropy", {}, {"p": c.prob(3, 17), "t": c.prob(3, 17)}, F.binary_cross_entropy, grads=["p"])
    # PyTorch clamps each log at -100; p = 0 and 1 must give 100, not inf. (A subnormal p is left
    # out: GPUs may flush it to zero or take an approximate log.)
    c.add("binaryCrossEntropy", {}, {"p": torch.tensor([0.0, 0.5, 1.0, 1e-30]), "t": torch.tensor([1.0, 0.25, 0.0, 1.0])},
          F.binary_cross_entropy, grads=[])
    c.add("binaryCrossEntropyWithLogits", {}, {"x": 5 * x(4, 9), "t": c.prob(4, 9)}, F.binary_cross_entropy_with_logits)
    c.add("cat", {"dim": 1}, {"a": x(2, 3, 4), "b": x(2, 1, 4), "c": x(2, 2, 4)}, lambda a, b, c: torch.cat([a, b, c], 1))
    c.add("cat", {"dim": -1}, {"a": x(3, 5), "b": x(3, 17)}, lambda a, b: torch.cat([a, b], -1))
    conv = [
        ({"stride": [2, 2], "padding": [1, 1]}, (2, 3, 9, 11), (4, 3, 3, 3), True),
        ({"dilation": [2, 2], "padding": [2, 2]}, (1, 5, 10, 9), (3, 5, 3, 3), False),
        ({"groups": 2, "stride": [2, 1], "padding": [1, 0]}, (2, 4, 7, 8), (6, 2, 3, 2), True),
        ({"groups": 6, "padding": [1, 1]}, (1, 6, 5, 5), (6, 1, 3, 3), True),
        ({}, (3, 17, 4, 5), (9, 17, 1, 1), False),
        ({"stride": [4, 4], "padding": [2, 2]}, (1, 3, 23, 23), (5, 3, 11, 11), True),
    ]
    for args, xs, ws, bias in conv:
        inputs = {"x": x(*xs), "w": x(*ws), **({"b": x(ws[0])} if bias else {})}
        targs = {"stride": args.get("stride", 1), "padding": args.get("padding", 0), "dilation": args.get("dilation", 1), "groups": args.get("groups", 1)}
        c.add("conv2d", args, inputs, lambda x, w, b=None, a=targs: F.conv2d(x, w, b, **a))
    convt = [
        ({"stride": [2, 2], "padding": [1, 1], "outputPadding": [1, 1]}, (2, 4, 5, 6), (4, 3, 3, 3), True),
        ({"groups": 2, "dilation": [2, 2], "stride": [1, 2], "padding": [1, 0]}, (1, 4, 4, 5), (4, 2, 3, 3), False),
        ({}, (2, 5, 1, 1), (5, 3, 4, 4), False),
        ({"stride": [2, 2], "padding": [1, 1]}, (2, 3, 4, 4), (3, 2, 4, 4), True),
        ({"stride": [3, 2], "outputPadding": [2, 1]}, (1, 2, 3, 3), (2, 3, 2, 3), True),
    ]
    for args, xs, ws, bias in convt:
        inputs = {"x": x(*xs), "w": x(*ws), **({"b": x(ws[1] * args.get("groups", 1))} if bias else {})}
        targs = {"stride": args.get("stride", 1), "padding": args.get("padding", 0), "output_padding": args.get("outputPadding", 0),
                 "dilation": args.get("dilation", 1), "groups": args.get("groups", 1)}
        c.add("convTranspose2d", args, inputs, lambda x, w, b=None, a=targs: F.conv_transpose2d(x, w, b, **a))
    for shape, momentum, eps in [((4, 3, 5, 6), 0.1, 1e-5), ((6, 5), 0.3, 1e-3), ((2, 7, 9), 0.1, 1e-5), ((1, 3, 1, 17), 0.1, 1e-5)]:
        C = shape[1]
        inputs = {"x": x(*shape), "w": c.positive(C), "b": x(C), "runningMean": x(C), "runningVar": c.positive(C)}
        mean, var = inputs["runningMean"].clone(), inputs["runningVar"].clone()

        def train_bn(x, w, b, runningMean, runningVar, mean=mean, var=var, momentum=momentum, eps=eps):
            return F.batch_norm(x, mean, var, w, b, True, momentum, eps)

        c.add("batchNorm", {"training": True, "momentum": momentum, "eps": eps}, inputs, train_bn, grads=["x", "w", "b"])
        # The running statistics after the update (the last call above ran once).
        cid = c.meta[-1]["id"]
        c.tensors[f"{cid}/after.runningMean"] = mean
        c.tensors[f"{cid}/after.runningVar"] = var
    for shape in [(3, 4, 5, 6), (5, 7)]:
        C = shape[1]
        inputs = {"x": x(*shape), "w": c.positive(C), "b": x(C), "runningMean": x(C), "runningVar": c.positive(C)}
        c.add("batchNorm", {"training": False, "eps": 1e-5}, inputs,
              lambda x, w, b, runningMean, runningVar: F.batch_norm(x, runningMean, runningVar, w, b, False, 0.1, 1e-5), grads=["x", "w", "b"])
    pools = [
        ("maxPool2d", {"kernelSize": [3, 3], "stride": [2, 2], "padding": [1, 1]}, (2, 3, 9, 10)),
        ("maxPool2d", {"kernelSize": [2, 2], "ceilMode": True}, (1, 2, 7, 9)),
        ("maxPool2d", {"kernelSize": [2, 3], "stride": [1, 2], "dilation": [2, 1]}, (2, 2, 8, 9)),
        ("maxPool2d", {"kernelSize": [3, 3], "stride": [2, 2]}, (1, 4, 13, 13)),
        ("avgPool2d", {"kernelSize": [3, 3], "stride": [2, 2], "padding": [1, 1]}, (2, 3, 9, 10)),
        ("avgPool2d", {"kernelSize": [3, 3], "stride": [2, 2], "padding": [1, 1], "countIncludePad": False}, (1, 3, 8, 7)),
        ("avgPool2d", {"kernelSize": [2, 2], "ceilMode": True}, (1, 2, 7, 9)),
        ("avgPool2d", {"kernelSize": [3, 2], "stride": [1, 1], "divisorOverride": 5}, (1, 2, 5, 6)),
    ]
    for fn, args, shape in pools:
        k = args["kernelSize"]
        if fn == "maxPool2d":
            f = lambda x, a=args: F.max_pool2d(x, a["kernelSize"], a.get("stride", a["kernelSize"]), a.get("padding", 0), a.get("dilation", 1), a.get("ceilMode", False))
        else:
            f = lambda x, a=args: F.avg_pool2d(x, a["kernelSize"], a.get("stride", a["kernelSize"]), a.get("padding", 0), a.get("ceilMode", False),
                                               a.get("countIncludePad", True), a.get("divisorOverride"))
        c.add(fn, args, {"x": x(*shape)}, f)
    for fn, size, shape in [("adaptiveAvgPool2d", [3, 4], (2, 3, 7, 9)), ("adaptiveAvgPool2d", [1, 1], (2, 5, 4, 3)),
                            ("adaptiveMaxPool2d", [2, 3], (1, 3, 7, 8)), ("adaptiveMaxPool2d", [1, 1], (2, 2, 5, 5))]:
        f = (lambda x, s=size: F.adaptive_avg_pool2d(x, s)) if fn == "adaptiveAvgPool2d" else (lambda x, s=size: F.adaptive_max_pool2d(x, s))
        c.add(fn, {"outputSize": size}, {"x": x(*shape)}, f)
    # Dropout: torch draws its own mask; the test checks dawnet's scaling and gradient where both
    # masks keep an element, and that dawnet keeps about 1 - p of them.
    torch.manual_seed(7)
    c.add("dropout", {"p": 0.3}, {"x": c.nonzero(64, 33)}, lambda x: F.dropout(x, 0.3, True))
    # A VAE's losses: MSE, the PyTorch VAE example's KLD (summed; and per sample, averaged over the
    # batch), and TripletMarginLoss (p = 2, eps = 1e-6, swap = False, mean reduction).
    c.add("mseLoss", {}, {"x": x(3, 17), "t": x(3, 17)}, F.mse_loss)
    kld = lambda mu, lv: -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
    c.add("gaussianKL", {"reduction": "sum"}, {"mu": x(4, 9), "logvar": x(4, 9)}, kld)
    c.add("gaussianKL", {"reduction": "mean"}, {"mu": x(5, 17), "logvar": x(5, 17)}, lambda mu, lv: kld(mu, lv) / mu.shape[0])
    for margin, rows in [(1.0, 6), (3.0, 5)]:
        c.add("tripletMarginLoss", {"margin": margin}, {"a": x(rows, 17), "p": x(rows, 17), "n": x(rows, 17)},
              lambda a, p, n, m=margin: F.triplet_margin_loss(a, p, n, margin=m))
    return c.tensors, c.meta


# --- optimizers and schedules ----------------------------------------------------------------------


def small_mlp():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


OPTIMIZERS = [
    ("sgd", {"lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd_momentum", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1)),
    ("sgd_nesterov_wd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weightDecay": 5e-2},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-2)),
    ("adam", {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weightDecay": 0.1},
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
    ("adam_dcgan", {"lr": 2e-4, "betas": [0.5, 0.999]}, lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999))),
    ("adamw", {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weightDecay": 0.05},
     lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
]
STEPS = 10


def optim_cases():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(8, 6, generator=gen)
    labels = torch.randint(0, 3, (8,), generator=gen, dtype=torch.int32)
    tensors, meta = {"x": x, "labels": labels}, []
    for name, hyper, make in OPTIMIZERS:
        model = small_mlp()
        for k, v in model.state_dict().items():
            tensors[f"{name}/init.{k}"] = v.clone()
        opt = make(model.parameters())
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), labels.long())
            loss.backward()
            opt.step()
            losses.append(loss.item())
        for k, v in model.state_dict().items():
            tensors[f"{name}/final.{k}"] = v.clone()
        tensors[f"{name}/losses"] = torch.tensor(losses)
        meta.append({"id": name, "kind": name.split("_")[0], "hyper": hyper, "steps": STEPS})
    return tensors, meta


SCHEDULES = [
    ("stepDecay", {"stepSize": 7, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    ("multiStep", {"milestones": [5, 12, 20], "gamma": 0.2}, lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12, 20], 0.2)),
    ("cosine", {"tMax": 25, "etaMin": 0.001}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 25, 0.001)),
    ("polynomialWarmup", {"maxIters": 20, "power": 0.9}, lambda o: torch.optim.lr_scheduler.PolynomialLR(o, 20, 0.9)),
]
EPOCHS = 30


def schedule_cases():
    tensors, meta = {}, []
    for name, args, make in SCHEDULES:
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = make(opt)
        lrs = []
        for _ in range(EPOCHS):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        tensors[f"{name}/lr"] = torch.tensor(lrs, dtype=torch.float64)
        meta.append({"id": name, "schedule": name, "args": args, "baseLr": 0.1, "epochs": EPOCHS})
    return tensors, meta


def pth_case(out_dir):
    """A torch.save file read without torch by the tests: a view sharing its storage with another
    tensor (strides and an offset), int64, float16 and float64, beside the same values as safetensors."""
    gen = torch.Generator().manual_seed(13)
    w = torch.randn(3, 4, generator=gen)
    state = OrderedDict([("linear.weight", w), ("linear.weight_t", w.t()), ("row", w[1, 1:]),
                         ("bn.num_batches_tracked", torch.tensor(123456789012, dtype=torch.int64)),
                         ("half", torch.randn(2, 3, generator=gen).half()), ("double", torch.randn(5, generator=gen).double())])
    torch.save(state, os.path.join(out_dir, "state.pth"))
    save(out_dir, "state", {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}, [])


# --- whole models ----------------------------------------------------------------------------------

# name: (builder, dawnet constructor and options, input shape, loss)
MODELS = {
    "nin": (lambda: rm.NetworkInNetwork(num_classes=4, num_stages=4), {"model": "NIN", "options": {"numClasses": 4, "stages": 4}}, (4, 3, 32, 32), "ce"),
    "alexnet": (lambda: rm.AlexNet(num_classes=4, pool5_side=1), {"model": "AlexNet", "options": {"numClasses": 4, "imageSize": 67}}, (4, 3, 67, 67), "ce"),
    "resnet18_cifar": (lambda: rm.resnet(18, 10, "cifar"), {"model": "resnet18", "options": {"numClasses": 10, "stem": "cifar"}}, (4, 3, 32, 32), "ce"),
    "resnet18_imagenet": (lambda: rm.resnet(18, 10, "imagenet"), {"model": "resnet18", "options": {"numClasses": 10, "stem": "imagenet"}}, (2, 3, 64, 64), "ce"),
    # Gradients in eval mode: in training mode this batch's gradients through ResNet-50's 53 batch
    # norms are ill-conditioned in float32 (torch's own oneDNN float32 path lands 0.3-0.5 of a
    # gradient's scale from float64, and so does dawnet). Training-mode batch norm's backward is
    # checked by the ops and the other models.
    "resnet50": (lambda: rm.resnet(50, 10, "imagenet"), {"model": "resnet50", "options": {"numClasses": 10, "stem": "imagenet"}, "gradMode": "eval"}, (2, 3, 32, 32), "ce"),
    "dcgan_g": (lambda: rm.DcganGenerator(nz=16, ngf=8, nc=3), {"model": "DcganGenerator", "options": {"nz": 16, "ngf": 8, "nc": 3}}, (3, 16, 1, 1), "mse"),
    "dcgan_d": (lambda: rm.DcganDiscriminator(ndf=8, nc=3), {"model": "DcganDiscriminator", "options": {"ndf": 8, "nc": 3}}, (3, 3, 64, 64), "bce"),
}
# Small enough to commit (the rest are generated into a cache when the tests run; see README).
COMMITTED_MODELS = ["nin", "dcgan_g", "dcgan_d"]


def randomise_batch_norm(net, gen):
    """Non-trivial affine parameters and running statistics, so that every one of them matters."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            C = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(C, generator=gen))
                m.bias.copy_(0.1 * torch.randn(C, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(C, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(C, generator=gen))
                m.num_batches_tracked.fill_(3)


def run_model(name, dtype):
    """The fixed batch through the model in `dtype`: the tensors of the fixture."""
    build, dawnet, shape, loss_kind = MODELS[name]
    torch.manual_seed(5)
    net = build()
    gen = torch.Generator().manual_seed(6)
    randomise_batch_norm(net, gen)
    tensors = {f"state.{k}": v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(*shape, generator=gen)
    net = net.to(dtype)
    tensors["x"] = x
    net.eval()
    with torch.no_grad():
        tensors["eval_out"] = net(x.to(dtype))
    net.train(dawnet.get("gradMode", "train") == "train")
    out = net(x.to(dtype))
    if loss_kind == "ce":
        target = torch.randint(0, out.shape[1], (shape[0],), generator=gen, dtype=torch.int32)
        loss = F.cross_entropy(out, target.long())
    elif loss_kind == "bce":
        target = torch.rand(shape[0], generator=gen)
        loss = F.binary_cross_entropy(out, target.to(dtype))
    else:
        target = torch.randn(*out.shape, generator=gen)
        loss = ((out - target.to(dtype)) ** 2).mean()
    loss.backward()
    tensors["target"] = target
    tensors["out"] = out
    tensors["loss"] = loss.reshape(())
    for k, p in net.named_parameters():
        tensors[f"grad.{k}"] = p.grad
    for k, v in net.state_dict().items():
        if "running_" in k or "num_batches" in k:
            tensors[f"after.{k}"] = v.clone()
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def model_case(name):
    """Computed in float64 from the float32 weights and batch, stored as float32: the exact answer
    that any float32 engine should approach. (torch's own float32 is no oracle here: on ResNet-50
    its oneDNN path lands up to 0.49 of a gradient's scale from float64 in training mode, its
    native kernels 0.05 in eval mode.) float64 also names the gradients that vanish
    mathematically, such as a convolution's bias before a training-mode batch norm."""
    tensors = run_model(name, torch.float64)
    grads = [k for k in tensors if k.startswith("grad.")]
    largest = max(tensors[k].abs().max().item() for k in grads)
    vanishing = [k for k in grads if tensors[k].abs().max().item() < 1e-6 * largest]
    _, dawnet, _, loss_kind = MODELS[name]
    return tensors, {"id": name, "loss": loss_kind, **dawnet, "vanishing": vanishing}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=COMMITTED, help="output folder (default: test/golden/fixtures)")
    parser.add_argument("--models", default=",".join(COMMITTED_MODELS), help=f"comma-separated models, or 'none' (of {', '.join(MODELS)})")
    parser.add_argument("--families", default="ops,optim,schedules,pth", help="comma-separated: ops, optim, schedules, pth, or 'none'")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    builders = {"ops": op_cases, "optim": optim_cases, "schedules": schedule_cases}
    for family in filter(None, args.families.split(",")):
        if family == "none":
            continue
        if family == "pth":
            pth_case(args.out)
            continue
        if family not in builders:
            parser.error(f"unknown family {family}")
        tensors, meta = builders[family]()
        save(args.out, family, tensors, meta)
    for name in filter(None, args.models.split(",")):
        if name == "none":
            continue
        if name not in MODELS:
            parser.error(f"unknown model {name} (models: {', '.join(MODELS)})")
        tensors, meta = model_case(name)
        save(args.out, f"model-{name}", tensors, [meta])


if __name__ == "__main__":
    main()
