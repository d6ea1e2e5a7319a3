"""One training step: encoder + generator against the two discriminators, on named batches."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TrainConfig
from .losses import GANLoss, diversity_hinge, ink_weight, multiscale_kl, tone_l1
from .model import SketchModel, sample_latents


@dataclass
class Batch:
    photo: torch.Tensor  # (N, 3, H, W) in [0, 1]
    style: torch.Tensor  # (N,) style indices
    sketch: torch.Tensor  # (N, 1, H, W) the artists' drawings (or people's contours) of those photos

    def to(self, device: torch.device) -> Batch:
        return Batch(self.photo.to(device), self.style.to(device), self.sketch.to(device))


def collate(items: list[dict]) -> Batch:
    """Dataset items ({"photo", "style", "sketch"}) -> one Batch; a DataLoader's collate_fn."""
    return Batch(torch.stack([it["photo"] for it in items]), torch.tensor([it["style"] for it in items]),
                 torch.stack([it["sketch"] for it in items]))


class NonFiniteLoss(ArithmeticError):
    """A loss became NaN or infinite; train() says which epoch and what became of the checkpoint."""


class GeneratorForward(nn.Module):
    """One forward() for the generator side of a step, so that DistributedDataParallel can wrap it.

    Encodes each photo once and decodes two latents sampled around it, exactly as `sample` samples them (the
    diversity term compares them, and the discriminators judge both).
    """

    def __init__(self, model: SketchModel):
        super().__init__()
        self.model = model

    def forward(self, photo: torch.Tensor, style: torch.Tensor, zoomed: torch.Tensor | None = None,
                mean: bool = False):
        """-> the two samples of each photo stacked [first; second] (and then, given mean, its mean sketch), the
        latent statistics, and (given zoomed, a batch of enlarged photo windows) the mean sketch of each of those,
        else None: `convert` draws large photos at t = 0, so that is the drawing the zoom term must teach."""
        stats = self.model.encode(photo)
        t = self.model.config.sample_temperature
        draws = [sample_latents(stats, t), sample_latents(stats, t)] + ([sample_latents(stats, 0.0)] if mean else [])
        fakes = self.model.decode([torch.cat(scale) for scale in zip(*draws)], style.repeat(len(draws)))
        if zoomed is None:
            return fakes, stats, None
        return fakes, stats, self.model.decode(sample_latents(self.model.encode(zoomed), 0.0), style)


def make_optimizers(model: SketchModel, disc: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for each side, beta1 0.5 as in pix2pix: a GAN's target moves, so long momentum overshoots.
    The pretrained front end learns more slowly than the layers that start from scratch."""
    backbone = list(model.encoder.backbone.parameters())
    mine = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in mine]
    groups = [{"params": rest}, {"params": backbone, "lr_factor": cfg.backbone_lr}]
    return (torch.optim.Adam(groups, lr=cfg.lr, betas=(0.5, 0.999)),
            torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_factor", 1.0)


def train_step(g_step, d_step, opt_g, opt_d, batch: Batch, cfg: TrainConfig, *, styles: tuple[str, ...],
               perceptual: nn.Module | None = None, trunk: nn.Module | None = None) -> dict[str, float]:
    """One optimisation step of encoder + generator, then one of the discriminators; the batch on the model's
    device. trunk: the frozen network whose features the feature discriminator judges (None: pixels only).

    The generator's loss is the sum of the terms below, each times its weight in cfg.loss_weights (a term whose
    weight is 0 is not computed). Returns every term (and the discriminators' loss "d") as a float.
    """
    gan = GANLoss()
    photo, sketch, style = batch.photo, batch.sketch, batch.style
    n = len(photo)
    weights = cfg.loss_weights
    margins = torch.tensor(cfg.diversity_margins(styles), device=photo.device)[style]  # on the device: no host sync
    judge_features = trunk is not None and weights["adv_features"] > 0
    augment = diff_augment if cfg.augment_disc else (lambda x: x)

    # encoder + generator: look like the artist's drawing, stay near the prior, fool D, keep two samples apart.
    # D is frozen and called unwrapped here, so DDP syncs only the gradients D really needs.
    disc = getattr(d_step, "module", d_step)
    disc.requires_grad_(False)
    zoom = zoom_windows(photo, sketch) if weights["zoom"] else None
    fakes, stats, zoom_fake = g_step(photo, style, zoom.photo if zoom else None, weights["mean"] > 0)
    samples, fake1, fake2, mean = fakes[:2 * n], fakes[:n], fakes[n:2 * n], fakes[2 * n:]
    terms = {
        "tone": tone_l1(fake1, sketch),
        "kl": multiscale_kl(stats, cfg.kl_factors()),
        "adv": gan(disc.patch(photo.repeat(2, 1, 1, 1), samples), True),
        "div": diversity_hinge(fake1, fake2, margins, ink_weight(sketch), cfg.diversity_knee),
    }
    # The feature discriminator judges the first sample of each photo (drawn as `sample` draws; one per photo halves
    # the trunk's cost), the enlarged windows' drawings, whose strokes should keep a pencil's width, and the mean
    # sketches. Not the patch discriminator: it sees the photo too, and would tell a zoomed one by its bicubic blur.
    judged = [fake1] + ([zoom_fake] if zoom else []) + ([mean] if len(mean) else [])
    judged, judged_style = torch.cat(judged), style.repeat(len(judged))
    if zoom:
        terms["zoom"] = zoom.likeness(zoom_fake, perceptual)
    if len(mean):
        terms["mean"] = tone_l1(mean, sketch) + (perceptual(mean, sketch) if perceptual is not None else 0.0)
    if judge_features:
        fake_features = trunk.features(augment(judged))
        terms["adv_features"] = gan.levels(disc.features(fake_features, judged_style), True)
    if perceptual is not None and weights["sample_div"]:
        # both samples must look like the artist's drawing, and differ from each other as a person sees it
        terms["perceptual"], between = perceptual.samples(samples, sketch, cfg.sample_diversity_pool)
        terms["sample_div"] = F.relu(cfg.sample_diversity_margin - between).mean()
    elif perceptual is not None and weights["perceptual"]:
        terms["perceptual"] = perceptual(fake1, sketch)
    loss_g = sum(weights[name] * value for name, value in terms.items())
    check_finite("generator", loss_g)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()

    # discriminators: real pairs against both generated sketches, each in one forward pass
    disc.requires_grad_(True)
    features = None
    if judge_features:
        with torch.no_grad():  # the trunk is frozen, and the generated sketches' features are those of above
            features = [torch.cat([r, f.detach()]) for r, f in zip(trunk.features(augment(sketch)), fake_features)]
    patch, levels = d_step(photo.repeat(3, 1, 1, 1), torch.cat([sketch, samples.detach()]), features,
                           torch.cat([style, judged_style]))
    loss_d = 0.5 * (gan(patch[:n], True) + gan(patch[n:], False))
    if levels:
        loss_d = loss_d + 0.5 * (gan.levels([x[:n] for x in levels], True) +
                                 gan.levels([x[n:] for x in levels], False))
    check_finite("discriminator", loss_d)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    terms["d"] = loss_d
    return {k: float(v.detach()) for k, v in terms.items()}


@dataclass
class ZoomWindows:
    photo: torch.Tensor  # (N, 3, S, S) a window of each photo, enlarged to the training crop's side S
    sketch: torch.Tensor  # (N, 1, w, w) the artist's drawing of that window, at its own size

    def likeness(self, drawn: torch.Tensor, perceptual: nn.Module | None) -> torch.Tensor:
        """How far the drawings of the enlarged windows, scaled back to the windows' size, are from the artist's:
        what `convert` does with a photo larger than the faces the model learned. Both are compared enlarged
        again by the same bilinear resize, since the perceptual network's deep layers need more than w pixels."""
        w, s = self.sketch.shape[-1], drawn.shape[-1]
        back = F.interpolate(drawn, size=(w, w), mode="area")
        loss = tone_l1(back, self.sketch)
        if perceptual is not None:
            up = lambda x: F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
            loss = loss + perceptual(up(back), up(self.sketch))
        return loss


def zoom_windows(photo: torch.Tensor, sketch: torch.Tensor, zooms: tuple[float, float] = (1.5, 4.0)) -> ZoomWindows:
    """A random square window of each pair, of side S / zoom for one zoom per batch drawn from zooms (a phone's
    face is 1 to 4x the one the model learned); the photo's window enlarged back to S (bicubic)."""
    s = photo.shape[-1]
    w = round(s / random.uniform(*zooms))
    tops = [random.randint(0, photo.shape[-2] - w) for _ in photo]
    lefts = [random.randint(0, s - w) for _ in photo]
    crop = lambda x: torch.stack([x[i, :, t:t + w, x0:x0 + w] for i, (t, x0) in enumerate(zip(tops, lefts))])
    up = F.interpolate(crop(photo), size=(s, s), mode="bicubic", align_corners=False).clamp(0, 1)
    return ZoomWindows(up, crop(sketch))


def diff_augment(sketches: torch.Tensor, shift: float = 0.125, cut: float = 0.5) -> torch.Tensor:
    """Differentiable augmentation for a discriminator's input (Zhao et al. 2020), the same kinds for real and
    generated sketches: a random translation by up to 1/8 of the side and one cut-out square of half the side,
    both filled with paper. With ~1000 drawings a discriminator otherwise memorises them, and its verdicts stop
    teaching the generator anything; colour changes are left out: the page's whiteness is part of what it judges."""
    n, _, h, w = sketches.shape
    dy, dx = int(h * shift), int(w * shift)
    padded = F.pad(sketches, (dx, dx, dy, dy), value=1.0)
    tops = torch.randint(0, 2 * dy + 1, (n,)).tolist()
    lefts = torch.randint(0, 2 * dx + 1, (n,)).tolist()
    out = torch.stack([padded[i, :, top:top + h, left:left + w]
                       for i, (top, left) in enumerate(zip(tops, lefts))])
    ch, cw = int(h * cut), int(w * cut)
    ys = torch.randint(-ch // 2, h - ch // 2 + 1, (n, 1, 1, 1), device=out.device)
    xs = torch.randint(-cw // 2, w - cw // 2 + 1, (n, 1, 1, 1), device=out.device)
    rows = torch.arange(h, device=out.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=out.device).view(1, 1, 1, w)
    hole = (rows >= ys) & (rows < ys + ch) & (cols >= xs) & (cols < xs + cw)
    return out.masked_fill(hole, 1.0)


def check_finite(side: str, loss: torch.Tensor) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"the {side} loss became {loss.item()}")
