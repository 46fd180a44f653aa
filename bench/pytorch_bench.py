"""PyTorch's side of dawnet's benchmarks: the same workloads, under the same names, in float32
with TF32 off, timed on this machine's GPU or CPU. Prints JSON lines: a header {peer, device},
then {name, ms, samples, ...} per workload. Feed them to dawnet's suite as a peer:

    python3 bench/pytorch_bench.py > /tmp/pytorch.jsonl
    npm run bench -- --pytorch /tmp/pytorch.jsonl --save <device>
    npm run bench -- --pytorch cpu      # runs `/usr/bin/python3 bench/pytorch_bench.py --device cpu` itself

Options: --device cuda|cpu (default: cuda when available), --quick (one timed run), --only TEXT.
Not timed here: the loader (dawnet's own pipeline) and augmentations other than the rotation batch.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LR = 0.01  # plain SGD, as dawnet's and the peers' training steps
CONV_SHAPES = [(64, 32), (128, 16), (256, 8), (512, 4)]  # ResNet-18's CIFAR 3x3 layers, C x H(=W)


def fp32_only():
    """Full float32: no TF32 in matmuls or convolutions; cuDNN may pick its fastest algorithm."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("highest")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(fn, device, iterations, warmup):
    """ms of each timed run; the device is synchronised inside the timed region, warm-ups excluded."""
    for _ in range(warmup):
        fn()
    sync(device)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        sync(device)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


# --- models, as dawnet's models/ build them ------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


def resnet18_cifar(num_classes=10):
    """torchvision's ResNet-18 with the CIFAR stem: a 3x3 stride-1 conv and no max-pool."""
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))


def conv_bn_relu(cin, cout, k, stride=1, padding=None):
    padding = (k - 1) // 2 if padding is None else padding
    return [nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def nin(stages=4, num_classes=4):
    """RotNet's NetworkInNetwork: conv-BN-ReLU blocks 192/160/96, max- then average-pooling."""
    c1, c2, c3 = 192, 160, 96
    layers = conv_bn_relu(3, c1, 5) + conv_bn_relu(c1, c2, 1) + conv_bn_relu(c2, c3, 1) + [nn.MaxPool2d(3, 2, 1)]
    layers += conv_bn_relu(c3, c1, 5) + conv_bn_relu(c1, c1, 1) + conv_bn_relu(c1, c1, 1) + [nn.AvgPool2d(3, 2, 1)]
    for s in range(3, stages + 1):
        layers += conv_bn_relu(c1, c1, 3) + conv_bn_relu(c1, c1, 1) + conv_bn_relu(c1, c1, 1)
        if s == 3 and stages > 3:
            layers.append(nn.AvgPool2d(3, 2, 1))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c1, num_classes))


def alexnet_rotnet(image_size, num_classes=4):
    """RotNet's AlexNet: batch norm after every conv and FC layer, FC layers without bias."""
    side = (image_size + 4 - 11) // 4 + 1
    for _ in range(3):
        side = (side - 3) // 2 + 1
    return nn.Sequential(
        *conv_bn_relu(3, 64, 11, 4, 2), nn.MaxPool2d(3, 2),
        *conv_bn_relu(64, 192, 5), nn.MaxPool2d(3, 2),
        *conv_bn_relu(192, 384, 3), *conv_bn_relu(384, 256, 3), *conv_bn_relu(256, 256, 3), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(256 * side * side, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(),
        nn.Linear(4096, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )


def training_flops(model, x):
    """3 x the forward FLOPs of the convolutions and linear layers (2 per multiply-add), as dawnet counts."""
    total = [0]

    def hook(module, _inputs, output):
        total[0] += 2 * output.numel() * (module.weight.numel() // module.weight.shape[0])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()
    for h in handles:
        h.remove()
    return 3 * total[0]


# --- workloads: (name, build) where build() returns (run, {flops | bytes | images}) -------------


def matmul(n, device):
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return lambda: torch.mm(a, b), {"flops": 2 * n**3}


def conv2d(pass_, c, h, device, batch=32):
    x = torch.randn(batch, c, h, h, device=device)
    w = torch.randn(c, c, 3, 3, device=device)
    dy = torch.randn(batch, c, h, h, device=device)
    if pass_ == "forward":
        run = lambda: F.conv2d(x, w, padding=1)
    else:
        # The dgrad / wgrad kernel alone, as autograd's conv backward calls it.
        mask = [pass_ == "backward-input", pass_ == "backward-weight", False]
        run = lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
    return run, {"flops": 2 * batch * c * h * h * c * 9}


def batchnorm(device, n=32, c=64, h=32):
    x = torch.randn(n, c, h, h, device=device, requires_grad=True)
    dy = torch.randn(n, c, h, h, device=device)
    gamma = torch.ones(c, device=device, requires_grad=True)
    beta = torch.zeros(c, device=device, requires_grad=True)
    mean, var = torch.zeros(c, device=device), torch.ones(c, device=device)

    def run():
        y = F.batch_norm(x, mean, var, gamma, beta, training=True)
        torch.autograd.grad(y, [x, gamma, beta], dy)

    return run, {"bytes": 5 * 4 * n * c * h * h}


def rotation(size, device, n=256):
    """RotNet's rotation batch: every image at 0, 90, 180 and 270 degrees, with its labels."""
    x = torch.rand(n, 3, size, size, device=device)

    def run():
        torch.cat([torch.rot90(x, k, (2, 3)) for k in range(4)])
        torch.arange(4, device=device).repeat_interleave(n)

    return run, {"bytes": 4 * x.numel() * 5}


def train_step(make_model, side, classes, batch, device):
    model = make_model().to(device)
    x = torch.randn(batch, 3, side, side, device=device)
    labels = torch.arange(batch, device=device) % classes
    flops = training_flops(model, x)
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def run():
        F.cross_entropy(model(x), labels).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return run, {"flops": flops, "images": batch}


def workloads(device):
    yield from ((f"matmul {n}", lambda n=n: matmul(n, device), 10) for n in (512, 1024, 2048))
    for pass_ in ("forward", "backward-input", "backward-weight"):
        for c, h in CONV_SHAPES:
            yield f"conv2d {pass_} 32x{c}x{h}x{h}", lambda p=pass_, c=c, h=h: conv2d(p, c, h, device), 10
    yield "batchnorm train fwd+bwd 32x64x32x32", lambda: batchnorm(device), 20
    # Batch 128 only on a GPU, as dawnet's suite.
    for batch in (8, 128) if device.type == "cuda" else (8,):
        yield f"train step resnet18 cifar batch {batch}", lambda b=batch: train_step(resnet18_cifar, 32, 10, b, device), 10
        yield f"train step nin4 cifar batch {batch}", lambda b=batch: train_step(nin, 32, 4, b, device), 10
        for side in (128, 224):
            make = lambda s=side: alexnet_rotnet(s)
            yield f"train step alexnet rotnet {side}px batch {batch}", lambda b=batch, s=side, m=make: train_step(m, s, 4, b, device), 10
    for size in (32, 96):
        yield f"augment rotation batch x4 (float32 in) {size}px", lambda s=size: rotation(s, device), 20


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    device = torch.device(args.device)
    fp32_only()
    if device.type == "cuda":
        peer = f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}, fp32, TF32 off)"
        name = torch.cuda.get_device_name(device)
    else:
        # Every core, as a user's CPU training would have them (torch may start with fewer).
        torch.set_num_threads(os.cpu_count() or 1)
        debian = torch.__file__.startswith("/usr/lib/python3/dist-packages/")
        peer = f"PyTorch {'.'.join(torch.__version__.split('.')[:2])} CPU{' (Debian)' if debian else ''}"
        name = f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(json.dumps({"peer": peer, "device": name}), flush=True)
    for workload, build, iterations in workloads(device):
        if args.only not in workload:
            continue
        run, counts = build()
        samples = time_runs(run, device, 1 if args.quick else iterations, warmup=1 if args.quick else 3)
        ms = statistics.median(samples)
        record = {"name": workload, "ms": ms, "samples": [round(s, 3) for s in samples]}
        if "flops" in counts:
            record["gflops"] = counts["flops"] / ms / 1e6
        if "bytes" in counts:
            record["gbps"] = counts["bytes"] / ms / 1e6
        if "images" in counts:
            record["imagesPerSecond"] = 1000 * counts["images"] / ms
        print(json.dumps(record), flush=True)
        del run
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
