"""Every loss term of the VAE-GAN, each a small function (or one class for the GAN objective)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) in closed form, averaged over latent elements."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def edge_l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients: a cheap structure term where no pretrained perceptual net is available."""
    fx, fy = image_gradients(fake)
    rx, ry = image_gradients(real)
    return (fx - rx).abs().mean() + (fy - ry).abs().mean()


def diversity_hinge(a: torch.Tensor, b: torch.Tensor, margin: float) -> torch.Tensor:
    """Mode seeking: penalise two sketches of one photo (different eps) that differ by less than the margin."""
    return F.relu(margin - (a - b).abs().mean(dim=(1, 2, 3))).mean()


def contour_target(photo: torch.Tensor) -> torch.Tensor:
    """A reference-free target for photos without a sketch: dark where the photo has strong edges, white elsewhere."""
    grey = (photo * torch.tensor([0.299, 0.587, 0.114], device=photo.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    blur = F.avg_pool2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    gx, gy = image_gradients(blur)
    mag = torch.sqrt(F.pad(gx, (0, 1)) ** 2 + F.pad(gy, (0, 0, 0, 1)) ** 2 + 1e-8)
    scale = torch.quantile(mag.flatten(1), 0.97, dim=1).clamp_min(1e-3).view(-1, 1, 1, 1)
    return 1 - (mag / scale).clamp(0, 1)


class GANLoss(nn.Module):
    """Least-squares GAN objective: knows its own targets, so callers only say real or fake."""

    def forward(self, prediction: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
        return F.mse_loss(prediction, target)
