"""The training loop: encoder + generator against a patch discriminator, on photo/sketch pairs.

Runs on one CPU or GPU, or under `torchrun --nproc_per_node N` (DistributedDataParallel).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .serialization import CHECKPOINT_NAME, CONFIG_NAME, WEIGHTS_NAME, read_checkpoint, restore, save_checkpoint
from .config import SketchConfig
from .device import pick_device
from .data import SketchDataset, find_pairs, find_photos, split
from .errors import SketchifyError
from .losses import (CONTOUR_LOOKS, DEFAULT_LOOK, GANLoss, contour_target, diversity_hinge, edge_l1, ink_weight,
                     kl_divergence, ssim)
from .model import PatchDiscriminator, SketchModel, reparameterize




@dataclass
class TrainOptions:
    data: list[Path]
    run: Path
    config: SketchConfig
    unpaired: Path | None = None
    default_style: str | None = None
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    time_limit_min: float | None = None  # fit the epochs to these minutes; stop after the epoch that passes them
    resume_epochs: int | None = None  # on resume, train to this many epochs instead of the checkpoint's
    workers: int = 0  # processes preparing batches beside the training step (on a GPU machine, 2-4 keep it fed)
    progress: bool = True
    log: callable = print


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


def train(opts: TrainOptions) -> Path:
    """Train, checkpoint each epoch, and export RUN/model; returns that model folder."""
    cfg = opts.config
    distributed, rank, world = init_distributed()
    device = pick_device(opts.device, local_rank=int(os.environ.get("LOCAL_RANK", 0)))
    main = rank == 0
    log = opts.log if main else (lambda *a, **k: None)

    run = opts.run
    ckpt_path = run / CHECKPOINT_NAME
    start_epoch = 0
    resume_state = None
    if opts.resume:
        if not ckpt_path.exists():
            raise SketchifyError(f"{ckpt_path}: no checkpoint to resume from")
        cfg, start_epoch, tensors, meta = read_checkpoint(ckpt_path)
        resume_state = (tensors, meta)
        if opts.resume_epochs:
            cfg.epochs = opts.resume_epochs
    elif (run / "model" / WEIGHTS_NAME).exists() or ckpt_path.exists():
        if not opts.overwrite:
            raise SketchifyError(f"{run}: already holds a training run; pass --resume to continue it or --overwrite to start again")

    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)

    train_set, val_set, unpaired_set = load_data(opts, cfg, log)
    sampler = torch.utils.data.DistributedSampler(train_set, shuffle=True, seed=cfg.seed) if distributed else None
    workers = dict(num_workers=opts.workers, persistent_workers=opts.workers > 0)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None,
                                         sampler=sampler, drop_last=len(train_set) >= cfg.batch_size * world, **workers)
    unpaired_iter = cycle(torch.utils.data.DataLoader(unpaired_set, batch_size=cfg.unpaired_batch_size, shuffle=True,
                                                      **workers)) if unpaired_set else None

    model = SketchModel(cfg).to(device)
    disc = PatchDiscriminator(channels=cfg.disc_channels, layers=cfg.disc_layers).to(device)
    opt_g, opt_d = make_optimizers(model, disc, cfg)
    modules, optimizers = {"model": model, "disc": disc}, {"opt_g": opt_g, "opt_d": opt_d}
    if resume_state:
        restore(ckpt_path, *resume_state, modules=modules, optimizers=optimizers)
        log(f"resumed from {ckpt_path} after epoch {start_epoch}")

    g_step, d_step = GeneratorForward(model), disc
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        g_step = nn.parallel.DistributedDataParallel(g_step, device_ids=ids)
        d_step = nn.parallel.DistributedDataParallel(disc, device_ids=ids)
    # No mixed precision: float32 throughout (cuDNN's convolutions use TF32 on a GPU by default). bf16 would buy no
    # speed (a step of a model this small is bound by kernel launches, not arithmetic), and just below white paper
    # its steps are 1/256 apart: the faintest pencil, one grey level from white, would round to the paper itself.

    if main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "samples").mkdir(exist_ok=True)
        cfg.save(run / CONFIG_NAME)
    started = time.monotonic()
    epoch, planned = start_epoch, cfg.epochs
    while epoch < cfg.epochs:
        epoch += 1
        if sampler is not None:
            sampler.set_epoch(epoch)
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(epoch, cfg.epochs)
        model.train()
        totals: dict[str, float] = {}
        with progress_bar(opts.progress and main, f"epoch {epoch}/{cfg.epochs}", len(loader)) as advance:
            for photo, sketch, style in loader:
                unpaired = next(unpaired_iter) if unpaired_iter is not None else None
                losses = train_step(g_step, d_step, opt_g, opt_d, (photo, sketch, style), unpaired, cfg,
                                    device=device, ckpt_path=ckpt_path, epoch=epoch)
                for k, v in losses.items():
                    totals[k] = totals.get(k, 0.0) + v
                advance(" ".join(f"{k} {v:.3f}" for k, v in losses.items()))

        if main:
            means = {k: v / max(1, len(loader)) for k, v in totals.items()}
            means["val_l1"] = validate(model, val_set, device)
            means["epoch"], means["minutes"] = epoch, (time.monotonic() - started) / 60
            with (run / "log.jsonl").open("a") as f:
                f.write(json.dumps(means) + "\n")
            log(f"epoch {epoch}: " + " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "epoch"))
            save_grid(model, val_set, device, run / "samples" / f"epoch_{epoch:03d}.png")
            save_checkpoint(ckpt_path, config=cfg, epoch=epoch, modules=modules, optimizers=optimizers)
        if out_of_time(opts.time_limit_min, started, distributed, device):
            log(f"time limit of {opts.time_limit_min} min reached after epoch {epoch}")
            break
        if opts.time_limit_min is not None:
            # refitted from the plan each epoch, so a slow first epoch (loading, a busy machine) cuts it only for now
            fitted = fit_epochs(planned, epoch, start_epoch, started, opts.time_limit_min, distributed, device)
            if fitted != cfg.epochs:
                log(f"{fitted} epochs fit in the time limit at this pace; the learning rate decays by then")
            cfg.epochs = fitted

    if main:
        model.eval().save_pretrained(run / "model")
        log(f"model saved to {run / 'model'}")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return run / "model"


def train_step(g_step, d_step, opt_g, opt_d, batch, unpaired, cfg: SketchConfig, *, device: torch.device,
               ckpt_path: Path = Path(CHECKPOINT_NAME), epoch: int = 0) -> dict[str, float]:
    """One optimisation step of encoder + generator, then one of the discriminator. Returns the losses."""
    gan = GANLoss()
    photo, sketch, style = (t.to(device) for t in batch)
    n = len(photo)
    photo_all, style_all = photo, style
    if unpaired is not None:  # photos without a sketch ride along in the same encoder pass
        photo_all = torch.cat([photo, unpaired[0].to(device)])
        style_all = torch.cat([style, unpaired[2].to(device)])

    margins = torch.tensor(cfg.diversity_margins(), device=device)[style]  # indexed on the device: no host sync

    # encoder + generator: reconstruct, stay near the prior, fool D, keep two samples apart.
    # D is frozen and called unwrapped here, so DDP syncs only the gradients D really needs.
    disc = getattr(d_step, "module", d_step)
    disc.requires_grad_(False)
    fake_all, fake2, mu, logvar = g_step(photo_all, style_all, n)
    fake1 = fake_all[:n]
    fakes = torch.cat([fake1, fake2])
    losses = {
        "l1": F.l1_loss(fake1, sketch),
        "edge": edge_l1(fake1, sketch),
        "ssim": 1 - ssim(fake1, sketch),
        "kl": kl_divergence(mu, logvar),
        "adv": gan(disc(photo.repeat(2, 1, 1, 1), fakes), True),
        "div": diversity_hinge(fake1, fake2, margins, ink_weight(sketch), cfg.diversity_knee),
    }
    if unpaired is not None:
        looks = [CONTOUR_LOOKS.get(cfg.styles[int(s)], DEFAULT_LOOK) for s in style_all[n:]]
        losses["contour"] = F.l1_loss(fake_all[n:], contour_target(photo_all[n:], looks))
    loss_g = (cfg.l1_weight * losses["l1"] + cfg.ssim_weight * losses["ssim"] + cfg.edge_weight * losses["edge"]
              + cfg.kl_weight * losses["kl"]
              + cfg.adv_weight * losses["adv"] + cfg.diversity_weight * losses["div"]
              + cfg.unpaired_weight * losses.get("contour", 0.0))
    check_finite(loss_g, epoch, ckpt_path)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()

    # discriminator: real pairs against both generated sketches, in one forward pass
    disc.requires_grad_(True)
    judged = d_step(photo.repeat(3, 1, 1, 1), torch.cat([sketch, fakes.detach()]))
    loss_d = 0.5 * (gan(judged[:n], True) + gan(judged[n:], False))
    check_finite(loss_d, epoch, ckpt_path)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    losses["d"] = loss_d
    return {k: float(v.detach()) for k, v in losses.items()}


# helpers


def init_distributed() -> tuple[bool, int, int]:
    """Join the process group when started by torchrun; returns (distributed, rank, world size)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False, 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True, dist.get_rank(), dist.get_world_size()


def load_data(opts: TrainOptions, cfg: SketchConfig, log) -> tuple[SketchDataset, SketchDataset, SketchDataset | None]:
    """Training pairs, a few fixed validation pairs for the sample grid, and the unpaired photos if any."""
    pairs = [p for d in opts.data for p in find_pairs(d, cfg, opts.default_style)]
    train_pairs, val_pairs = split(pairs, cfg.val_fraction)
    if not train_pairs:
        raise SketchifyError("no training pairs left after the validation split; add more pairs")
    log(f"{len(train_pairs)} training pairs, {len(val_pairs)} held out for validation")
    train_set = SketchDataset(train_pairs, cfg, augment=True)
    val_set = SketchDataset(val_pairs[:8] or train_pairs[:8], cfg, augment=False)
    unpaired_set = None
    if opts.unpaired is not None and cfg.unpaired_weight > 0:
        unpaired_set = SketchDataset(find_photos(opts.unpaired, cfg), cfg, augment=True)
        log(f"{len(unpaired_set)} unpaired photos for the contour loss")
    return train_set, val_set, unpaired_set


def make_optimizers(model: nn.Module, disc: nn.Module, cfg: SketchConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for each side, beta1 0.5 as in pix2pix: a GAN's target moves, so long momentum overshoots."""
    return (torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999)),
            torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999)))


def lr_factor(epoch: int, epochs: int) -> float:
    """Constant for the first half, then linear decay towards zero (as in pix2pix)."""
    half = epochs // 2
    return 1.0 if epoch <= half else 1.0 - (epoch - half) / (epochs - half + 1)


def out_of_time(limit_min: float | None, started: float, distributed: bool, device: torch.device) -> bool:
    """Past the time limit? Under DDP every rank stops after the same epoch, as soon as one is past it."""
    if limit_min is None:
        return False
    late = torch.tensor([float((time.monotonic() - started) / 60 >= limit_min)], device=device)
    if distributed:
        dist.all_reduce(late, op=dist.ReduceOp.MAX)
    return bool(late.item())


def fit_epochs(planned: int, epoch: int, first: int, started: float, limit_min: float, distributed: bool,
               device: torch.device) -> int:
    """The epochs that fit in the time limit at the pace so far, at most the planned ones.

    Training to this count (rather than stopping mid-schedule) lets the learning rate's decay finish on time:
    a run cut off at full learning rate draws noticeably worse than one that decayed.
    """
    elapsed = (time.monotonic() - started) / 60
    per_epoch = elapsed / (epoch - first)
    fits = torch.tensor([float(epoch + int((limit_min - elapsed) / per_epoch))], device=device)
    if distributed:  # every rank must agree on the schedule
        dist.all_reduce(fits, op=dist.ReduceOp.MIN)
    return max(epoch, min(planned, int(fits.item())))


def check_finite(loss: torch.Tensor, epoch: int, ckpt: Path) -> None:
    if not torch.isfinite(loss):
        kept = f"the last good checkpoint {ckpt} is intact" if ckpt.exists() else "no checkpoint was written yet"
        raise SketchifyError(f"loss became {loss.item()} in epoch {epoch}; training stopped, {kept}")


def cycle(loader):
    while True:
        yield from loader


def val_batch(val_set: SketchDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed validation crops as one batch: photos, sketches, styles."""
    return tuple(torch.stack([torch.as_tensor(x) for x in col]) for col in zip(*(val_set[i] for i in range(len(val_set)))))


@torch.no_grad()
def validate(model: SketchModel, val_set: SketchDataset, device: torch.device) -> float:
    model.eval()
    photo, sketch, style = val_batch(val_set)
    fake = model(photo.to(device), style.to(device), temperature=0.0)
    model.train()
    return float(F.l1_loss(fake.cpu(), sketch))


@torch.no_grad()
def save_grid(model: SketchModel, val_set: SketchDataset, device: torch.device, path: Path) -> None:
    """One column per validation photo: photo, reference sketch, t = 0 sketch, two samples."""
    model.eval()
    photo, sketch, style = val_batch(val_set)
    photo, style = photo.to(device), style.to(device)
    rows = [photo.cpu(), sketch.expand(-1, 3, -1, -1)]
    for t in (0.0, 1.0, 1.0):
        rows.append(model(photo, style, temperature=t).cpu().expand(-1, 3, -1, -1))
    model.train()
    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)
    Image.fromarray((grid.permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy()).save(path)


class progress_bar:
    """A Rich progress bar over one epoch's steps, or nothing when progress is off."""

    def __init__(self, enabled: bool, title: str, total: int):
        self.enabled, self.title, self.total = enabled, title, total

    def __enter__(self):
        if not self.enabled:
            return lambda text="": None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task(self.title, total=self.total, losses="")
        return lambda text="": self.bar.update(task, advance=1, losses=text)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
