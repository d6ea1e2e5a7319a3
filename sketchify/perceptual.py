"""ST-LPIPS (Ghildyal & Liu, ECCV 2022): LPIPS on shift-tolerant, blur-pooled AlexNet or VGG16 features.

Our own modules; the trained weights come from the `stlpips-pytorch` wheel (weights/vST0.0/*.pth), read as plain
state dicts, so its modules (which need torchvision) are never imported.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .efficientnet import package_file  # the one finder of a pretrained package's files
from .errors import SketchifyError

# helpers

def unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


# classes

class BlurPool(nn.Module):
    """Anti-aliased stride-2 downsampling (Zhang 2019): a [1, 2, 1] binomial blur per channel, then subsample.
    ST-LPIPS pads by 2 (not 1) with reflection, which is part of what makes it tolerate small shifts."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = k[:, None] * k[None, :]
        self.register_buffer("filt", (k / k.sum()).expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def conv_relu(c_in: int, c_out: int, k: int, *, padding: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=padding), nn.ReLU()]


def blurred_max_pool(channels: int, k: int) -> list[nn.Module]:
    """Max-pool densely (stride 1), then blur-pool: the anti-aliased replacement of a strided max-pool."""
    return [nn.MaxPool2d(k, stride=1), BlurPool(channels)]


def alexnet_stages() -> nn.ModuleList:
    """Shift-tolerant AlexNet up to relu5: the first conv runs at stride 1 and blur-pools after it."""
    return nn.ModuleList([
        nn.Sequential(nn.Conv2d(3, 64, 11, padding=2), BlurPool(64), nn.ReLU()),
        nn.Sequential(*blurred_max_pool(64, 3), *conv_relu(64, 192, 5, padding=2)),
        nn.Sequential(*blurred_max_pool(192, 3), *conv_relu(192, 384, 3, padding=1)),
        nn.Sequential(*conv_relu(384, 256, 3, padding=1)),
        nn.Sequential(*conv_relu(256, 256, 3, padding=1)),
    ])


def vgg16_stages() -> nn.ModuleList:
    """Shift-tolerant VGG16 up to relu5_3, split at relu1_2, relu2_2, relu3_3, relu4_3."""
    widths = [(3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3)]
    stages = []
    for i, (c_in, c_out, n) in enumerate(widths):
        layers = blurred_max_pool(c_in, 2) if i > 0 else []
        for j in range(n):
            layers += conv_relu(c_in if j == 0 else c_out, c_out, 3, padding=1)
        stages.append(nn.Sequential(*layers))
    return nn.ModuleList(stages)


NETS = {
    # name: (stages, channels per stage, index in the original flat `features` where each stage starts)
    "alex": (alexnet_stages, (64, 192, 384, 256, 256), (0, 3, 7, 11, 13)),
    "vgg": (vgg16_stages, (64, 128, 256, 512, 512), (0, 4, 10, 18, 26)),
}


def remap(state: dict[str, torch.Tensor], starts: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The package's keys (net.slice{k}.{flat index}.*, lin{k}.model.1.*, scaling_layer.*) -> ours."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "net":
            stage = int(parts[1].removeprefix("slice")) - 1
            out[".".join(["stages", str(stage), str(int(parts[2]) - starts[stage]), *parts[3:]])] = value
        elif parts[0].startswith("lin"):
            out[f"heads.{parts[0].removeprefix('lin')}.{parts[-1]}"] = value
        elif parts[0] == "scaling_layer":
            out[parts[1]] = value
        else:
            raise SketchifyError(f"unexpected key {key} in the ST-LPIPS weights")
    return out


class STLPIPS(nn.Module):
    """Perceptual distance between images (N, 1 or 3, H, W) in [0, 1] -> (N,); 0 for identical images.

    Judge with "alex" (what the LPIPS authors validated as a metric); train with "vgg". The parameters are frozen;
    gradients still flow to the inputs.
    """

    def __init__(self, net: str = "alex", *, pretrained: bool = True):
        super().__init__()
        if net not in NETS:
            raise SketchifyError(f"unknown ST-LPIPS net {net!r}; choose from {', '.join(NETS)}")
        make_stages, channels, starts = NETS[net]
        self.channels = channels  # of each stage's features
        self.stages = make_stages()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        # LPIPS's input scaling: images in [-1, 1] shifted and scaled to ImageNet's statistics
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        if pretrained:
            path = package_file("stlpips_pytorch", f"weights/vST0.0/{net}_shift_tolerant.pth")
            state = torch.load(path, weights_only=True, map_location="cpu")
            self.load_state_dict(remap(state, starts), strict=True)
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((2 * x - 1) - self.shift) / self.scale
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(unit_normalize(x))
        return out

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """Distances (N,) between two batches' features: to score many images against one, compute its features
        once and expand them."""
        return sum(head((a - b).pow(2)).mean(dim=(1, 2, 3)) for head, a, b in zip(self.heads, fa, fb))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"batch sizes differ: {a.shape[0]} and {b.shape[0]}")
        if a.shape[1] != b.shape[1]:  # one greyscale, one colour: compare both as RGB
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        both = self.features(torch.cat([a, b]))  # one pass for the pair: half the per-layer overhead
        n = a.shape[0]
        return self.distance([f[:n] for f in both], [f[n:] for f in both])
