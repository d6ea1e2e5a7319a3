"""Choosing where the model runs."""

from __future__ import annotations

import torch

from .errors import SketchifyError


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SketchifyError("--device cuda: no CUDA GPU is available here (try --device auto)")
        return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise SketchifyError("--device mps: Apple MPS is not available here (try --device auto)")
    if name not in ("cpu", "mps"):
        raise SketchifyError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)
