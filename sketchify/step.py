"""One training step: encoder + generator against the patch discriminator, on named batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TrainConfig
from .losses import (CONTOUR_LOOKS, DEFAULT_LOOK, GANLoss, contour_target, diversity_hinge, edge_l1, ink_weight,
                     kl_divergence, ssim)
from .model import SketchModel, reparameterize


@dataclass
class Batch:
    photo: torch.Tensor  # (N, 3, H, W) in [0, 1]
    style: torch.Tensor  # (N,) style indices
    sketch: torch.Tensor | None = None  # (N, 1, H, W) reference drawings; None for photos without one

    def to(self, device: torch.device) -> "Batch":
        sketch = self.sketch.to(device) if self.sketch is not None else None
        return Batch(self.photo.to(device), self.style.to(device), sketch)


def collate(items: list[dict]) -> Batch:
    """Dataset items ({"photo", "style"} and maybe "sketch") -> one Batch; a DataLoader's collate_fn."""
    sketch = torch.stack([it["sketch"] for it in items]) if "sketch" in items[0] else None
    return Batch(torch.stack([it["photo"] for it in items]), torch.tensor([it["style"] for it in items]), sketch)


class NonFiniteLoss(ArithmeticError):
    """A loss became NaN or infinite; train() says which epoch and what became of the checkpoint."""


class GeneratorForward(nn.Module):
    """One forward() for the generator side of a step, so that DistributedDataParallel can wrap it.

    Encodes paired and unpaired photos together, then decodes two latents per paired photo
    (for the diversity term) and one per unpaired photo.
    """

    def __init__(self, model: SketchModel):
        super().__init__()
        self.model = model

    def forward(self, photo, style, n_paired: int):
        mu, logvar = self.model.encode(photo, style)
        z1 = reparameterize(mu, logvar)
        z2 = reparameterize(mu[:n_paired], logvar[:n_paired])
        fakes = self.model.decode(torch.cat([z1, z2]), torch.cat([style, style[:n_paired]]))
        return fakes[:len(photo)], fakes[len(photo):], mu, logvar


def make_optimizers(model: nn.Module, disc: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for each side, beta1 0.5 as in pix2pix: a GAN's target moves, so long momentum overshoots."""
    return (torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999)),
            torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999)))


def train_step(g_step, d_step, opt_g, opt_d, paired: Batch, unpaired: Batch | None, cfg: TrainConfig, *,
               styles: tuple[str, ...]) -> dict[str, float]:
    """One optimisation step of encoder + generator, then one of the discriminator; batches on the model's device.

    The generator's loss is the sum of the terms below, each times its weight in cfg.loss_weights.
    Returns every term (and the discriminator's loss "d") as a float.
    """
    gan = GANLoss()
    photo, sketch, style = paired.photo, paired.sketch, paired.style
    n = len(photo)
    photo_all, style_all = photo, style
    if unpaired is not None:  # photos without a sketch ride along in the same encoder pass
        photo_all, style_all = torch.cat([photo, unpaired.photo]), torch.cat([style, unpaired.style])
    margins = torch.tensor(cfg.diversity_margins(styles), device=photo.device)[style]  # on the device: no host sync

    # encoder + generator: reconstruct, stay near the prior, fool D, keep two samples apart.
    # D is frozen and called unwrapped here, so DDP syncs only the gradients D really needs.
    disc = getattr(d_step, "module", d_step)
    disc.requires_grad_(False)
    fake_all, fake2, mu, logvar = g_step(photo_all, style_all, n)
    fake1 = fake_all[:n]
    fakes = torch.cat([fake1, fake2])
    terms = {
        "l1": F.l1_loss(fake1, sketch),
        "edge": edge_l1(fake1, sketch),
        "ssim": 1 - ssim(fake1, sketch),
        "kl": kl_divergence(mu, logvar),
        "adv": gan(disc(photo.repeat(2, 1, 1, 1), fakes), True),
        "div": diversity_hinge(fake1, fake2, margins, ink_weight(sketch), cfg.diversity_knee),
    }
    if unpaired is not None:
        looks = [CONTOUR_LOOKS.get(styles[int(s)], DEFAULT_LOOK) for s in style_all[n:]]
        terms["contour"] = F.l1_loss(fake_all[n:], contour_target(photo_all[n:], looks))
    loss_g = sum(cfg.loss_weights[name] * value for name, value in terms.items())
    check_finite("generator", loss_g)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()

    # discriminator: real pairs against both generated sketches, in one forward pass
    disc.requires_grad_(True)
    judged = d_step(photo.repeat(3, 1, 1, 1), torch.cat([sketch, fakes.detach()]))
    loss_d = 0.5 * (gan(judged[:n], True) + gan(judged[n:], False))
    check_finite("discriminator", loss_d)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    terms["d"] = loss_d
    return {k: float(v.detach()) for k, v in terms.items()}


def check_finite(side: str, loss: torch.Tensor) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"the {side} loss became {loss.item()}")
