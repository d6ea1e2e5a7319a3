"""The hybrid VAE-GAN's networks: encoder E, generator G, patch discriminator D."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

# helpers


def act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, temperature: float = 1.0,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + t * sigma * eps, eps ~ N(0, I): the sample stays differentiable in mu and sigma."""
    if temperature == 0:
        return mu
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + temperature * torch.exp(0.5 * logvar) * eps


def modulate(h: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
    """FiLM: scale and shift each channel of h by a style's (N, 2C) parameters; zeros leave h as it is."""
    scale, shift = film[:, :, None, None].chunk(2, dim=1)
    return h * (1 + scale) + shift


# classes


class StyleResBlock(nn.Module):
    """Residual block whose features are scaled and shifted per style (FiLM)."""

    def __init__(self, *, channels: int, style_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(style_dim, 2 * channels)
        self.act = act()

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.act(modulate(self.conv1(x), self.film(style)))
        return x + self.conv2(h)


class Encoder(nn.Module):
    """Photo (and style) -> mu, log sigma^2 of a latent map at 1/4 of the photo's size."""

    def __init__(self, *, channels: int, latent_channels: int, style_dim: int, blocks: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels // 4, 3, padding=1), act(),
            nn.Conv2d(channels // 4, channels // 2, 4, stride=2, padding=1), act(),
            nn.Conv2d(channels // 2, channels, 4, stride=2, padding=1), act(),
        )
        self.blocks = nn.ModuleList(StyleResBlock(channels=channels, style_dim=style_dim) for _ in range(blocks))
        self.to_stats = nn.Conv2d(channels, 2 * latent_channels, 3, padding=1)
        # start with sigma ~ 0.2: at sigma = 1 the generator sees mostly noise and learns to ignore the photo
        nn.init.constant_(self.to_stats.bias[latent_channels:], -3.0)

    def forward(self, photo: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stem(photo * 2 - 1)
        for block in self.blocks:
            h = block(h, style)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 4)  # keep sigma finite early in training


class UpBlock(nn.Module):
    """Double the size, convolve, and (with a style) scale and shift the features per style (FiLM)."""

    def __init__(self, *, in_channels: int, out_channels: int, style_dim: int, modulated: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(style_dim, 2 * out_channels) if modulated else None
        self.act = act()

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        if self.film is not None:
            h = modulate(h, self.film(style))
        return self.act(h)


class Generator(nn.Module):
    """Latent map (and style) -> one-channel sketch in [0, 1], white paper = 1. No skip from the photo."""

    def __init__(self, *, channels: int, latent_channels: int, style_dim: int, blocks: int,
                 up_channels: int, up_modulated: bool):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(latent_channels, channels, 3, padding=1), act())
        self.blocks = nn.ModuleList(StyleResBlock(channels=channels, style_dim=style_dim) for _ in range(blocks))
        # 1/4 -> 1/2 -> full size; the stroke drawing happens here, so a style may shape it too
        self.up = nn.ModuleList([
            UpBlock(in_channels=channels, out_channels=up_channels, style_dim=style_dim, modulated=up_modulated),
            UpBlock(in_channels=up_channels, out_channels=up_channels // 2, style_dim=style_dim,
                    modulated=up_modulated),
        ])
        self.to_sketch = nn.Conv2d(up_channels // 2, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.stem(z)
        for block in self.blocks:
            h = block(h, style)
        for block in self.up:
            h = block(h, style)
        return torch.sigmoid(self.to_sketch(h) + 2.0)  # start near white paper


class PatchDiscriminator(nn.Module):
    """Judges (photo, sketch) pairs patch by patch (PatchGAN)."""

    def __init__(self, *, channels: int, layers: int):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(4, channels, 4, stride=2, padding=1), act()]
        c = channels
        for _ in range(layers - 1):
            mods += [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * c), act()]
            c *= 2
        mods += [nn.Conv2d(c, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, photo: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([photo * 2 - 1, sketch * 2 - 1], dim=1))


class SketchModel(nn.Module):
    """Encoder + generator + style codes: everything inference needs, saved as a model folder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.style_embedding = nn.Embedding(len(c.styles), c.style_dim)
        self.encoder = Encoder(channels=c.channels, latent_channels=c.latent_channels,
                               style_dim=c.style_dim, blocks=c.encoder_blocks)
        self.generator = Generator(channels=c.channels, latent_channels=c.latent_channels,
                                   style_dim=c.style_dim, blocks=c.generator_blocks,
                                   up_channels=c.up_channels, up_modulated=c.up_modulated)

    def encode(self, photo: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(photo, self.style_embedding(style))

    def decode(self, z: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.generator(z, self.style_embedding(style))

    def forward(self, photo: torch.Tensor, style: torch.Tensor, temperature: float = 1.0,
                eps: torch.Tensor | None = None) -> torch.Tensor:
        """Photo batch (N, 3, H, W) in [0, 1], H and W multiples of 4 -> sketch batch (N, 1, H, W).

        eps (N, latent_channels, H/4, W/4) fixes the noise; by default it is drawn fresh.
        """
        mu, logvar = self.encode(photo, style)
        return self.decode(reparameterize(mu, logvar, temperature, eps), style)

    # the model folder (config.json + model.safetensors): sketchify.serialization reads and writes it

    def save_pretrained(self, folder: str | Path) -> None:
        from .serialization import save_model

        save_model(self, folder)

    @classmethod
    def from_pretrained(cls, source: str | Path, *, device: str | torch.device = "cpu") -> "SketchModel":
        """A model folder or a Hugging Face Hub repo id; strict, never unpickles anything."""
        from .serialization import load_model

        return load_model(source, device=device)
