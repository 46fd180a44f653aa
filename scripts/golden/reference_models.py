"""The networks of dawnet's models/ written in torch, as their reference code writes them:
RotNet's NetworkInNetwork and AlexNet (FeatureLearningRotNet architectures/*.py, parameters under
`_feature_blocks.N`), the PyTorch DCGAN example's generator and discriminator, and torchvision's
ResNets with the CIFAR stem (a 3x3 stride-1 conv, no max-pool)."""

import torch.nn as nn
import torchvision


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class GlobalAveragePooling(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), x.size(1), -1).mean(2)


class NinBlock(nn.Module):
    """RotNet's NetworkInNetwork.BasicBlock: conv (no bias) -> BatchNorm -> ReLU under `layers`."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.layers = nn.Sequential()
        self.layers.add_module("Conv", nn.Conv2d(cin, cout, k, 1, (k - 1) // 2, bias=False))
        self.layers.add_module("BatchNorm", nn.BatchNorm2d(cout))
        self.layers.add_module("ReLU", nn.ReLU(inplace=True))

    def forward(self, x):
        return self.layers(x)


class NetworkInNetwork(nn.Module):
    def __init__(self, num_classes=4, num_inchannels=3, num_stages=4, use_avg_on_conv3=True):
        super().__init__()
        c1, c2, c3 = 192, 160, 96
        blocks = [nn.Sequential() for _ in range(num_stages)]
        blocks[0].add_module("Block1_ConvB1", NinBlock(num_inchannels, c1, 5))
        blocks[0].add_module("Block1_ConvB2", NinBlock(c1, c2, 1))
        blocks[0].add_module("Block1_ConvB3", NinBlock(c2, c3, 1))
        blocks[0].add_module("Block1_MaxPool", nn.MaxPool2d(3, 2, 1))
        blocks[1].add_module("Block2_ConvB1", NinBlock(c3, c1, 5))
        blocks[1].add_module("Block2_ConvB2", NinBlock(c1, c1, 1))
        blocks[1].add_module("Block2_ConvB3", NinBlock(c1, c1, 1))
        blocks[1].add_module("Block2_AvgPool", nn.AvgPool2d(3, 2, 1))
        blocks[2].add_module("Block3_ConvB1", NinBlock(c1, c1, 3))
        blocks[2].add_module("Block3_ConvB2", NinBlock(c1, c1, 1))
        blocks[2].add_module("Block3_ConvB3", NinBlock(c1, c1, 1))
        if num_stages > 3 and use_avg_on_conv3:
            blocks[2].add_module("Block3_AvgPool", nn.AvgPool2d(3, 2, 1))
        for s in range(3, num_stages):
            blocks[s].add_module(f"Block{s + 1}_ConvB1", NinBlock(c1, c1, 3))
            blocks[s].add_module(f"Block{s + 1}_ConvB2", NinBlock(c1, c1, 1))
            blocks[s].add_module(f"Block{s + 1}_ConvB3", NinBlock(c1, c1, 1))
        blocks.append(nn.Sequential())
        blocks[-1].add_module("GlobalAveragePooling", GlobalAveragePooling())
        blocks[-1].add_module("Classifier", nn.Linear(c1, num_classes))
        self._feature_blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for block in self._feature_blocks:
            x = block(x)
        return x


class AlexNet(nn.Module):
    """RotNet's AlexNet; pool5_side is 6 at 224 px (the reference hard-codes 6 * 6 * 256)."""

    def __init__(self, num_classes=4, pool5_side=6):
        super().__init__()

        def block(cin, cout, k, stride, padding):
            return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        fc_block = nn.Sequential(
            Flatten(),
            nn.Linear(256 * pool5_side * pool5_side, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(inplace=True),
        )
        self._feature_blocks = nn.ModuleList([
            block(3, 64, 11, 4, 2), nn.MaxPool2d(3, 2),
            block(64, 192, 5, 1, 2), nn.MaxPool2d(3, 2),
            block(192, 384, 3, 1, 1), block(384, 256, 3, 1, 1), block(256, 256, 3, 1, 1), nn.MaxPool2d(3, 2),
            fc_block, nn.Sequential(nn.Linear(4096, num_classes)),
        ])

    def forward(self, x):
        for block in self._feature_blocks:
            x = block(x)
        return x


class DcganGenerator(nn.Module):
    """The DCGAN example's Generator (64x64), its layers under `main`."""

    def __init__(self, nz, ngf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class DcganDiscriminator(nn.Module):
    """The DCGAN example's Discriminator (64x64): the probability of real, flattened to (N,)."""

    def __init__(self, ndf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x).view(-1)


def resnet(depth, num_classes, stem):
    net = getattr(torchvision.models, f"resnet{depth}")(num_classes=num_classes)
    if stem == "cifar":
        net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    return net
