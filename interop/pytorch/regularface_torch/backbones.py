"""regularface's backbones in PyTorch, with regularface's module and parameter
names (SphereFace-N, LeNet++) and insightface's (MobileFaceNet, iResNet), so a
checkpoint's `backbone.*` tensors load with `strict=True`.
"""
import torch
import torch.nn as nn

SPHEREFACE_UNITS = {4: (0, 0, 0, 0), 10: (0, 1, 2, 0), 20: (1, 2, 4, 1), 36: (2, 4, 8, 2), 64: (3, 8, 16, 3)}
IRESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}


class ResidualUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.prelu1 = nn.PReLU(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.prelu2 = nn.PReLU(c)

    def forward(self, x):
        return x + self.prelu2(self.conv2(self.prelu1(self.conv1(x))))


class Stage(nn.Module):
    def __init__(self, cin, cout, units):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 2, 1)
        self.prelu = nn.PReLU(cout)
        for u in range(units):
            self.add_module(f"unit{u}", ResidualUnit(cout))
        self.units = units

    def forward(self, x):
        x = self.prelu(self.conv(x))
        for u in range(self.units):
            x = getattr(self, f"unit{u}")(x)
        return x


class SphereFace(nn.Module):
    def __init__(self, depth, in_channels, hw, feature_dim):
        super().__init__()
        cin, (h, w) = in_channels, hw
        for s, (c, units) in enumerate(zip((64, 128, 256, 512), SPHEREFACE_UNITS[depth])):
            self.add_module(f"stage{s + 1}", Stage(cin, c, units))
            cin, h, w = c, (h - 1) // 2 + 1, (w - 1) // 2 + 1
        self.fc5 = nn.Linear(512 * h * w, feature_dim)

    def forward(self, x):
        for s in range(4):
            x = getattr(self, f"stage{s + 1}")(x)
        return self.fc5(torch.flatten(x, 1))


class LeNetPlusPlus(nn.Module):
    def __init__(self, in_channels, hw, feature_dim):
        super().__init__()
        prev = in_channels
        for i, c in enumerate((32, 32, 64, 64, 128, 128)):
            stage, k = i // 2 + 1, i % 2 + 1
            self.add_module(f"conv{stage}_{k}", nn.Conv2d(prev, c, 5, 1, 2))
            self.add_module(f"prelu{stage}_{k}", nn.PReLU(c))
            prev = c
        h, w = hw[0] // 8, hw[1] // 8
        self.fc = nn.Linear(128 * h * w, feature_dim)
        self.prelu_fc = nn.PReLU(feature_dim)

    def forward(self, x):
        for i in range(6):
            stage, k = i // 2 + 1, i % 2 + 1
            x = getattr(self, f"prelu{stage}_{k}")(getattr(self, f"conv{stage}_{k}")(x))
            if k == 2:
                x = nn.functional.max_pool2d(x, 2, 2)
        return self.prelu_fc(self.fc(torch.flatten(x, 1)))


class Block(nn.Module):
    """insightface's ConvBlock / LinearBlock / DepthWise / Residual: modules under `layers`."""

    def __init__(self, *layers, residual=False):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


def _conv_bn(i, o, k, s, p, g, prelu):
    mods = [nn.Conv2d(i, o, k, s, p, groups=g, bias=False), nn.BatchNorm2d(o)]
    return Block(*(mods + [nn.PReLU(o)] if prelu else mods))


def _depth_wise(i, o, residual, stride, groups):
    return Block(_conv_bn(i, groups, 1, 1, 0, 1, True), _conv_bn(groups, groups, 3, stride, 1, groups, True),
                 _conv_bn(groups, o, 1, 1, 0, 1, False), residual=residual)


def _residual(c, blocks, groups):
    return Block(*[_depth_wise(c, c, True, 1, groups) for _ in range(blocks)])


class MobileFaceNet(nn.Module):
    """insightface's get_mbf(fp16=False, num_features) layout (blocks (1, 4, 6, 2), scale 2, GDC head)."""

    def __init__(self, feature_dim):
        super().__init__()
        s = 2
        self.layers = nn.Sequential(
            _conv_bn(3, 64 * s, 3, 2, 1, 1, True), _conv_bn(64 * s, 64 * s, 3, 1, 1, 64, True),
            _depth_wise(64 * s, 64 * s, False, 2, 128), _residual(64 * s, 4, 128),
            _depth_wise(64 * s, 128 * s, False, 2, 256), _residual(128 * s, 6, 256),
            _depth_wise(128 * s, 128 * s, False, 2, 512), _residual(128 * s, 2, 256))
        self.conv_sep = _conv_bn(128 * s, 512, 1, 1, 0, 1, True)
        self.features = Block(_conv_bn(512, 512, 7, 1, 0, 512, False), nn.Flatten(),
                              nn.Linear(512, feature_dim, bias=False), nn.BatchNorm1d(feature_dim))

    def forward(self, x):
        return self.features(self.conv_sep(self.layers(x)))


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (self.downsample(x) if self.downsample is not None else x)


class IResNet(nn.Module):
    """insightface's iresnet18/34/50/100 layout (dropout 0, `features.weight` frozen)."""

    def __init__(self, depth, feature_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for s, (planes, blocks) in enumerate(zip((64, 128, 256, 512), IRESNET_LAYERS[depth])):
            layer = []
            for b in range(blocks):
                layer.append(IBasicBlock(inplanes, planes, 2 if b == 0 else 1))
                inplanes = planes
            self.add_module(f"layer{s + 1}", nn.Sequential(*layer))
        self.bn2 = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512 * 7 * 7, feature_dim)
        self.features = nn.BatchNorm1d(feature_dim)
        self.features.weight.requires_grad = False

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        for s in range(4):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))


def build_backbone(cfg):
    """The backbone a regularface config (the checkpoint's `regularface.config`) describes."""
    model, (c, h, w), d = cfg["model"], cfg["input"], cfg["feature_dim"]
    if model.startswith("sphereface"):
        return SphereFace(int(model[len("sphereface"):]), c, (h, w), d)
    if model == "lenetpp":
        return LeNetPlusPlus(c, (h, w), d)
    if model == "mobilefacenet":
        return MobileFaceNet(d)
    if model.startswith("iresnet"):
        return IResNet(int(model[len("iresnet"):]), d)
    raise ValueError(f"unknown model {model!r}")
