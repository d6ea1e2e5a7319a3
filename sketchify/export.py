"""ONNX export: the drawing network for one style at t = 0, to run without Python's torch (onnxruntime, the web).

The graph is sketchify.fast's FastSketch (the style folded into the weights, the mean latents), traced with
torch's TorchScript exporter (dynamo=False): the network has no data-dependent control flow, so a trace is the
whole function, it needs only `onnx` (the dynamo exporter needs onnxscript besides, and took 50x as long here),
and dynamic height and width come from dynamic_axes. Sampling (t > 0) is not exported.

Input `photo`: float RGB (N, 3, H, W) in [0, 1], H and W multiples of the model's stride (16).
Output `sketch`: (N, 1, H, W) in [0, 1], white paper = 1.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from .errors import SketchifyError
from .fast import FastSketch
from .files import atomic_write, file_id, open_regular

OPSET = 17  # onnxruntime 1.14+ and onnxruntime-web run it
MARK = "sketchify"  # the metadata key that names a file as an export of this tool
LARGEST_EXPORT = 256 * 2**20  # a file larger than this is not one of ours: not parsed to find out


class MeanSketch(torch.nn.Module):
    """FastSketch at t = 0: photo in, sketch out, the one signature the graph has."""

    def __init__(self, fast: FastSketch):
        super().__init__()
        self.fast = fast

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        return self.fast(photo, 0.0, None)


# helpers


def check_onnx():
    try:
        import onnx
    except ImportError:
        raise SketchifyError("ONNX export needs onnx: pip install 'sketchify[export]'") from None
    return onnx


def is_export(path: Path) -> bool:
    """Whether path holds a file this tool exported (ONNX with sketchify's metadata): only those are replaced
    without --overwrite."""
    onnx = check_onnx()
    try:
        if path.stat().st_size > LARGEST_EXPORT:
            return False
        with open_regular(path) as f:
            model = onnx.load_model_from_string(f.read())
    except Exception:  # noqa: BLE001 - anything unreadable or not ONNX is not ours
        return False
    return any(p.key == MARK for p in model.metadata_props)


def check_target(path: Path, overwrite: bool, inputs: list[Path]) -> None:
    """Refuse a folder, an input (the weights), or another file that is not a previous export."""
    if path.is_dir():
        raise SketchifyError(f"-o {path}: is a folder; give a file name, e.g. {path / 'sketch.onnx'}")
    if file_id(path) is not None and file_id(path) in {file_id(p) for p in inputs}:
        raise SketchifyError(f"-o {path}: is the model's own file; choose another name")
    if path.exists() and not overwrite and not is_export(path):
        raise SketchifyError(f"-o {path}: exists and is not a sketchify export; pass --overwrite to replace it")


def model_files(weights: str | None) -> list[Path]:
    """The files a model is loaded from, when they are on this disk: the export never writes over them."""
    from .serialization import DEFAULT_SOURCE, default_weights

    folder = default_weights() if weights in (None, DEFAULT_SOURCE) else Path(weights)
    if folder.is_file():
        return [folder]
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


# export


def export_onnx(sketcher, path: Path, *, style: str | None = None, overwrite: bool = False,
                inputs: list[Path] = ()) -> str:
    """Write the network for style to path (atomically); returns the style's name. inputs: files that must
    never be written over (the weights the model came from), whatever overwrite says."""
    onnx = check_onnx()
    config = sketcher.config
    index = config.style_index(style)
    check_target(path, overwrite, list(inputs))
    with torch.no_grad():  # not inference_mode: the tracer cannot record inference tensors
        model = MeanSketch(FastSketch(sketcher.model, index)).eval()
    s = config.stride
    example = torch.rand(1, 3, 4 * s, 4 * s, device=sketcher.device)
    buffer = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter's deprecation, and tracer warnings about the backbone's "same" padding, computed
        # in Python from the size: it is the same for every multiple of the stride (the tests hold other sizes)
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=["photo"],
                          output_names=["sketch"], dynamic_axes={"photo": axes, "sketch": axes})
    graph = onnx.load_model_from_string(buffer.getvalue())
    record = {"style": config.styles[index], "temperature": 0.0, "model": sketcher.model_id, "stride": s}
    onnx.helper.set_model_props(graph, {MARK: json.dumps(record, sort_keys=True)})
    graph.doc_string = (f"sketchify, style {config.styles[index]}: photo (N, 3, H, W) RGB in [0, 1], H and W "
                        f"multiples of {s} -> sketch (N, 1, H, W) in [0, 1]")
    data = graph.SerializeToString()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    except OSError as e:  # a full disk, a folder that is a file, no permission
        raise SketchifyError(f"cannot write {path}: {e.strerror or e}") from None
    return config.styles[index]
