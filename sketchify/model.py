"""The hybrid VAE-GAN's networks: encoder E, generator G, patch discriminator D."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .efficientnet import EfficientNetLite0, block_specs

# the EfficientNet-Lite0 blocks whose outputs give a latent, finest first: at 1/2, 1/4, 1/8 and 1/16 size
TAPS = (0, 2, 4, 10)
LOGVAR_RANGE = (-10.0, 4.0)  # keeps sigma finite early in training
LATENT_STRIDES = (2, 4, 8, 16)  # the latent maps sit at these fractions of the photo's size, finest first
LEAK = 0.2  # the LeakyReLU slope of every network here
PAPER_BIAS = 2.0  # added before the sketch's sigmoid: an untrained generator draws near-white paper (0.88)

# helpers


def act() -> nn.Module:
    return nn.LeakyReLU(LEAK, inplace=True)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, temperature: float = 1.0,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + t * sigma * eps, eps ~ N(0, I): the sample stays differentiable in mu and sigma."""
    if temperature == 0:
        return mu
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + temperature * torch.exp(0.5 * logvar) * eps


def sample_latents(stats: list[tuple[torch.Tensor, torch.Tensor]], temperature: float = 1.0,
                   eps: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """How a sketch is sampled, the one definition that training, its grids and inference share: every latent
    scale drawn from q(z|x) at one temperature (1: the distribution training samples and learns from; 0: the
    means, the mean sketch)."""
    eps = eps if eps is not None else [None] * len(stats)
    return [reparameterize(mu, logvar, temperature, e) for (mu, logvar), e in zip(stats, eps)]


def draw_noise(latent_channels: tuple[int, ...], height: int, width: int,
               generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """eps for one photo of height x width (multiples of the coarsest stride): a (k, h/s, w/s) map per scale,
    drawn on the CPU so that a seed gives the same sketch on any device."""
    return [torch.randn(k, height // s, width // s, generator=generator)
            for k, s in zip(latent_channels, LATENT_STRIDES)]


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
    """Photo -> (mu, log sigma^2) of a latent map at each of 1/2, 1/4, 1/8 and 1/16 of its size.

    An ImageNet-trained EfficientNet-Lite0 reads the photo (it knows eyes, hair and edges from the start); a head
    on each of its stages gives that scale's latent. Fine latents carry where the strokes go, coarse ones the
    likeness and the style's freedom; every path to the generator passes through one of them.
    """

    def __init__(self, *, latent_channels: tuple[int, ...]):
        super().__init__()
        self.backbone = EfficientNetLite0(blocks=TAPS[-1] + 1, head=False, folded=True)
        specs = block_specs()
        self.heads = nn.ModuleList(nn.Conv2d(specs[t]["cout"], 2 * k, 3, padding=1)
                                   for t, k in zip(TAPS, latent_channels))
        for head, k in zip(self.heads, latent_channels):
            # start with sigma ~ 0.2: at sigma = 1 the generator sees mostly noise and learns to ignore the photo
            nn.init.constant_(head.bias[k:], -3.0)

    def forward(self, photo: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        stats = []
        for head, h in zip(self.heads, self.backbone.features(photo, TAPS)):
            mu, logvar = head(h).chunk(2, dim=1)
            stats.append((mu, logvar.clamp(*LOGVAR_RANGE)))
        return stats


class UpBlock(nn.Module):
    """Double the size, join the latent of the new scale, convolve, and shape per style (FiLM)."""

    def __init__(self, *, in_channels: int, latent_channels: int, out_channels: int, style_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels + latent_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(style_dim, 2 * out_channels)
        self.act = act()

    def forward(self, h: torch.Tensor, z: torch.Tensor | None, style: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        if z is not None:
            h = torch.cat([h, z], dim=1)
        return self.act(modulate(self.conv(h), self.film(style)))


class Generator(nn.Module):
    """Latent maps (finest first) and a style -> one-channel sketch in [0, 1], white paper = 1.

    Works coarse to fine: residual blocks at 1/16, then each doubling joins the next finer latent. The full-size
    layer is thin, so that large photos stay fast.
    """

    def __init__(self, *, latent_channels: tuple[int, ...], widths: tuple[int, ...], deep_blocks: int,
                 style_dim: int):
        super().__init__()
        k2, k4, k8, k16 = latent_channels
        w1, w2, w4, w8, w16 = widths
        self.stem = nn.Sequential(nn.Conv2d(k16, w16, 3, padding=1), act())
        self.blocks = nn.ModuleList(StyleResBlock(channels=w16, style_dim=style_dim) for _ in range(deep_blocks))
        self.up = nn.ModuleList(UpBlock(in_channels=a, latent_channels=k, out_channels=b, style_dim=style_dim)
                                for a, k, b in [(w16, k8, w8), (w8, k4, w4), (w4, k2, w2), (w2, 0, w1)])
        self.to_sketch = nn.Conv2d(w1, 1, 3, padding=1)

    def forward(self, zs: list[torch.Tensor], style: torch.Tensor) -> torch.Tensor:
        z2, z4, z8, z16 = zs
        h = self.stem(z16)
        for block in self.blocks:
            h = block(h, style)
        for block, z in zip(self.up, (z8, z4, z2, None)):
            h = block(h, z, style)
        return torch.sigmoid(self.to_sketch(h) + PAPER_BIAS)


class PatchDiscriminator(nn.Module):
    """Judges (photo, sketch) pairs patch by patch (PatchGAN); spectral norm keeps it from overpowering G."""

    def __init__(self, *, channels: int, layers: int):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        mods: list[nn.Module] = [sn(nn.Conv2d(4, channels, 4, stride=2, padding=1)), act()]
        c = channels
        for _ in range(layers - 1):
            mods += [sn(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)), act()]
            c *= 2
        mods += [sn(nn.Conv2d(c, 1, 3, padding=1))]
        self.net = nn.Sequential(*mods)

    def forward(self, photo: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([photo * 2 - 1, sketch * 2 - 1], dim=1))


class FeatureDiscriminator(nn.Module):
    """Judges sketches on a frozen pretrained network's features (a vision-aided GAN, Kumari et al. 2022): a small
    patch head per feature level. Its logits add a projection on the style (Miyato & Koyama 2018), so that each
    style is judged against its own artists' drawings, not against all of them."""

    def __init__(self, *, feature_channels: tuple[int, ...], channels: int, styles: int):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.heads = nn.ModuleList(nn.Sequential(sn(nn.Conv2d(c, channels, 3, padding=1)), act())
                                   for c in feature_channels)
        self.logits = nn.ModuleList(sn(nn.Conv2d(channels, 1, 1)) for _ in feature_channels)
        self.styles = nn.ModuleList(nn.Embedding(styles, channels) for _ in feature_channels)

    def forward(self, features: list[torch.Tensor], style: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for f, head, logit, code in zip(features, self.heads, self.logits, self.styles):
            h = head(f)
            out.append(logit(h) + (h * code(style)[:, :, None, None]).sum(1, keepdim=True))
        return out


class Discriminator(nn.Module):
    """Both judges of the GAN: the patch discriminator on (photo, sketch) pixels, which holds the drawing to its
    photo, and the feature discriminator on the sketch alone, which asks whether it looks drawn."""

    def __init__(self, config: ModelConfig, *, feature_channels: tuple[int, ...]):
        super().__init__()
        self.patch = PatchDiscriminator(channels=config.disc_channels, layers=config.disc_layers)
        self.features = FeatureDiscriminator(feature_channels=feature_channels, channels=config.disc_channels,
                                             styles=len(config.styles))

    def forward(self, photo: torch.Tensor, sketch: torch.Tensor, features: list[torch.Tensor] | None,
                style: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Patch logits of the (photo, sketch) pairs, and the feature discriminator's logits per level (none
        without features)."""
        return self.patch(photo, sketch), (self.features(features, style) if features is not None else [])


class SketchModel(nn.Module):
    """Encoder + generator + style codes: everything inference needs, saved as a model folder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.style_embedding = nn.Embedding(len(c.styles), c.style_dim)
        self.encoder = Encoder(latent_channels=c.latent_channels)
        self.generator = Generator(latent_channels=c.latent_channels, widths=c.widths, deep_blocks=c.deep_blocks,
                                   style_dim=c.style_dim)

    def encode(self, photo: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.encoder(photo)

    def decode(self, zs: list[torch.Tensor], style: torch.Tensor) -> torch.Tensor:
        return self.generator(zs, self.style_embedding(style))

    def forward(self, photo: torch.Tensor, style: torch.Tensor, temperature: float | None = None,
                eps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Photo batch (N, 3, H, W) in [0, 1], H and W multiples of config.stride -> sketch batch (N, 1, H, W).

        A sample at the model's sample_temperature unless given (0: the mean sketch). eps (one (N, k, H/s, W/s)
        map per scale s = 2, 4, 8, 16) fixes the noise; by default it is drawn fresh.
        """
        t = self.config.sample_temperature if temperature is None else temperature
        return self.decode(sample_latents(self.encode(photo), t, eps), style)

    # the model folder (config.json + model.safetensors): sketchify.serialization reads and writes it

    def save_pretrained(self, folder: str | Path) -> None:
        from .serialization import save_model

        save_model(self, folder)

    @classmethod
    def from_pretrained(cls, source: str | Path, *, device: str | torch.device = "cpu") -> SketchModel:
        """A model folder or a Hugging Face Hub repo id; strict, never unpickles anything."""
        from .serialization import load_model

        return load_model(source, device=device)
