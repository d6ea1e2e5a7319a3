"""sketchify: photos to pencil sketches with a hybrid VAE-GAN.

    from sketchify import Sketcher
    sketch = Sketcher.from_pretrained().sketch("photo.jpg", style="bold-ink")
"""

from .config import ModelConfig, TrainConfig
from .errors import SketchifyError

__version__ = "0.1.0"
__all__ = ["Sketcher", "ModelConfig", "TrainConfig", "SketchModel", "SketchifyError", "__version__"]


def __getattr__(name):
    # torch loads only when a model is asked for, so that `sketchify --help` stays fast
    if name == "Sketcher":
        from .inference import Sketcher

        return Sketcher
    if name == "SketchModel":
        from .model import SketchModel

        return SketchModel
    raise AttributeError(name)
