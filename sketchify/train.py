"""The training loop: encoder + generator against a patch discriminator and a feature one, on photo/sketch pairs.

Runs on one CPU or GPU, or under `torchrun --nproc_per_node N` (DistributedDataParallel).
"""

from __future__ import annotations

import json
import os
import random
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .config import ModelConfig, TrainConfig, apply_settings, changes
from .data import SketchDataset, balanced_sampler, find_contours, find_pairs, split
from .device import pick_device
from .errors import SketchifyError
from .files import check_regular, is_regular, remove_leftovers, write_durably
from .finetune import Source, load_source, start_from
from .losses import PerceptualLoss
from .model import Discriminator, SketchModel
from .perceptual import NETS, STLPIPS
from .serialization import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    DISCRIMINATOR_NAME,
    WEIGHTS_NAME,
    Checkpoint,
    NonFiniteState,
    read_checkpoint,
    restore,
    save_checkpoint,
    save_discriminator,
)
from .step import Batch, GeneratorForward, NonFiniteLoss, collate, make_optimizers, set_lr, train_step

TRAINING_NAME = "training.json"
LOG_NAME = "log.jsonl"


@dataclass
class TrainOptions:
    data: list[Path]
    run: Path
    config: Path | None = None  # a training.json to start from (default: TrainConfig's defaults)
    settings: list[str] = field(default_factory=list)  # "key=value" overrides of either config (--set)
    init_from: str | Path | None = None  # a model folder, run folder or checkpoint to start from (and grow)
    contours: tuple[Path, Path] | None = None  # scene photos and the boundaries people drew (the contour style)
    default_style: str | None = None
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    time_limit_min: float | None = None  # fit the epochs to these minutes; stop after the epoch that passes them
    workers: int = 0  # processes preparing batches beside the training step (on a GPU machine, 2-4 keep it fed)
    progress: bool = True
    log: callable = print


def plan_run(opts: TrainOptions, log) -> tuple[ModelConfig, TrainConfig, Checkpoint | None, Source | None]:
    """The run's configs, and the checkpoint to resume or the model to start from, if any."""
    run, ckpt_path = opts.run, opts.run / CHECKPOINT_NAME
    check_run_folder(run)
    file = TrainConfig.load(opts.config) if opts.config else None
    if opts.resume:
        if opts.init_from is not None:
            raise SketchifyError("--resume continues OUTPUT's own run; --init-from starts a new one: choose one")
        if not ckpt_path.exists():
            raise SketchifyError(f"{ckpt_path}: no checkpoint to resume from")
        ckpt = read_checkpoint(ckpt_path)
        model_cfg, train_cfg = apply_settings(ckpt.model, file or ckpt.train, opts.settings)
        if model_cfg != ckpt.model:
            raise SketchifyError(f"--resume keeps the model's shape ({changes(ckpt.model, model_cfg)[0]}); "
                                 "start a new run with --init-from to grow it")
        for line in changes(ckpt.train, train_cfg):
            log(f"changed on resume: {line}")
        return model_cfg, train_cfg, ckpt, None
    if ((run / "model" / WEIGHTS_NAME).exists() or ckpt_path.exists()) and not opts.overwrite:
        raise SketchifyError(f"{run}: already holds a training run; pass --resume to continue it or --overwrite to "
                             "start again")
    source = load_source(opts.init_from) if opts.init_from is not None else None
    base = source.model.config if source else ModelConfig()
    model_cfg, train_cfg = apply_settings(base, file or TrainConfig(), opts.settings)
    train_cfg.diversity_margins(model_cfg.styles)  # a margin for a style the model lacks fails now, not mid-epoch
    told = any(item.partition("=")[0].strip() == "draw_size" for item in opts.settings)
    if model_cfg.draw_size != train_cfg.load_size and not told:
        # the model draws best at the scale it learned: the short side training loads its photos at
        log(f"draw_size follows load_size: {model_cfg.draw_size} -> {train_cfg.load_size}")
        model_cfg = replace(model_cfg, draw_size=train_cfg.load_size)
    return model_cfg, train_cfg, None, source


def train(opts: TrainOptions) -> Path:
    """Train, checkpoint each epoch, and export RUN/model; returns that model folder."""
    distributed, rank, world = init_distributed()
    device = pick_device(opts.device, local_rank=int(os.environ.get("LOCAL_RANK", 0)))
    main = rank == 0
    log = opts.log if main else (lambda *a, **k: None)
    run = opts.run
    model_cfg, cfg, ckpt, source = plan_run(opts, log)

    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    train_set, val_set = load_data(opts, model_cfg, cfg, log)
    loader, sampler = make_loader(train_set, cfg, opts.workers, distributed, world)
    nets = build(model_cfg, cfg, ckpt, source, device, distributed, log, run / CHECKPOINT_NAME)
    if main:
        start_run(run, cfg, ckpt)

    started = time.monotonic()
    epoch = start_epoch = ckpt.epoch if ckpt else 0
    planned = cfg.epochs
    while epoch < cfg.epochs:
        epoch += 1
        if distributed:
            sampler.set_epoch(epoch)
        means = train_epoch(nets, loader, cfg, epoch, device, show=opts.progress and main, run=run)
        if main:
            end_epoch(run, nets, val_set, device, means, epoch, started, log)
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
        export(run, nets, log)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return run / "model"


# the steps of train(), in its order


@dataclass
class Nets:
    """What one training step works on: the models, their optimizers, the wrapped steps and the frozen judges."""

    config: ModelConfig
    train: TrainConfig
    model: SketchModel
    disc: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_step: nn.Module  # GeneratorForward(model), or its DistributedDataParallel wrapper
    d_step: nn.Module
    perceptual: PerceptualLoss | None
    trunk: STLPIPS | None

    @property
    def modules(self) -> dict[str, nn.Module]:  # the checkpoint's parts, by their names there
        return {"model": self.model, "disc": self.disc}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}


def make_loader(train_set: SketchDataset, cfg: TrainConfig, workers: int, distributed: bool, world: int):
    """The training batches, and their sampler (which DDP reseeds each epoch)."""
    # a few styles have far fewer pairs than others (FS2K's bold ink, CUHK's portraits): balanced by style
    sampler = (torch.utils.data.DistributedSampler(train_set, shuffle=True, seed=cfg.seed) if distributed
               else balanced_sampler(train_set.pairs))
    options = dict(num_workers=workers, persistent_workers=workers > 0, collate_fn=collate)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                                         drop_last=len(train_set) >= cfg.batch_size * world, **options)
    return loader, sampler


def build(model_cfg: ModelConfig, cfg: TrainConfig, ckpt: Checkpoint | None, source: Source | None,
          device: torch.device, distributed: bool, log, ckpt_path: Path) -> Nets:
    """The models, fresh, from --init-from's source or from the checkpoint, with their optimizers, on device."""
    model = SketchModel(model_cfg)
    disc = Discriminator(model_cfg, feature_channels=NETS["alex"][1])
    if source is not None:
        start_from(source, model, disc, log)
    elif ckpt is None and cfg.pretrained:
        model.encoder.backbone.load_state_dict(pretrained_backbone(model), strict=True)
    model, disc = model.to(device), disc.to(device)
    wanted = any(cfg.loss_weights[k] > 0 for k in ("perceptual", "sample_div", "zoom", "mean"))
    perceptual = PerceptualLoss(cfg.perceptual_net).to(device) if wanted else None
    trunk = feature_trunk(perceptual, cfg).to(device) if cfg.loss_weights["adv_features"] > 0 else None
    opt_g, opt_d = make_optimizers(model, disc, cfg)
    nets = Nets(model_cfg, cfg, model, disc, opt_g, opt_d, GeneratorForward(model), disc, perceptual, trunk)
    if ckpt is not None:
        restore(ckpt_path, ckpt, modules=nets.modules, optimizers=nets.optimizers)
        log(f"resumed from {ckpt_path} after epoch {ckpt.epoch}")
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        nets.g_step = nn.parallel.DistributedDataParallel(nets.g_step, device_ids=ids)
        nets.d_step = nn.parallel.DistributedDataParallel(disc, device_ids=ids, find_unused_parameters=trunk is None)
    # No mixed precision: float32 throughout (cuDNN's convolutions use TF32 on a GPU by default). bf16 would buy no
    # speed (a step of a model this small is bound by kernel launches, not arithmetic), and just below white paper
    # its steps are 1/256 apart: the faintest pencil, one grey level from white, would round to the paper itself.
    return nets


def start_run(run: Path, cfg: TrainConfig, ckpt: Checkpoint | None) -> None:
    """The run folder before the first epoch: a new run clears an earlier run's files; a resumed one makes its log
    agree with its checkpoint."""
    with saving(run):
        run.mkdir(parents=True, exist_ok=True)
        for folder in (run, run / "model"):
            remove_leftovers(folder)  # the temporary files of a run killed while saving
        if ckpt is None:
            clear_run(run)
        else:
            sync_log(run / LOG_NAME, ckpt)
        (run / "samples").mkdir(exist_ok=True)
        cfg.save(run / TRAINING_NAME)


def train_epoch(nets: Nets, loader, cfg: TrainConfig, epoch: int, device: torch.device, *, show: bool,
                run: Path) -> dict[str, float]:
    """One pass over the training batches; returns each loss term's mean."""
    for opt in (nets.opt_g, nets.opt_d):
        set_lr(opt, cfg.lr * lr_factor(epoch, cfg.epochs))
    nets.model.train()
    totals: dict[str, float] = {}
    with progress_bar(show, f"epoch {epoch}/{cfg.epochs}", len(loader)) as advance:
        for batch in loader:
            try:
                losses = train_step(nets.g_step, nets.d_step, nets.opt_g, nets.opt_d, batch.to(device), cfg,
                                    styles=nets.config.styles, perceptual=nets.perceptual, trunk=nets.trunk)
            except NonFiniteLoss as e:
                raise SketchifyError(f"{e} in epoch {epoch}; training stopped, {kept(run)}") from None
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v
            advance(" ".join(f"{k} {v:.3f}" for k, v in losses.items()))
    return {k: v / max(1, len(loader)) for k, v in totals.items()}


def end_epoch(run: Path, nets: Nets, val_set: SketchDataset, device: torch.device, means: dict[str, float],
              epoch: int, started: float, log) -> None:
    """Checkpoint, then log the epoch and draw its sample grid: the log has a line only for a saved epoch."""
    line = {**means, "val_l1": validate(nets.model, val_set, device), "epoch": epoch,
            "minutes": (time.monotonic() - started) / 60}
    with saving(run):
        try:
            save_checkpoint(run / CHECKPOINT_NAME, model=nets.config, train=nets.train, epoch=epoch,
                            modules=nets.modules, optimizers=nets.optimizers, log=line)
        except NonFiniteState as e:  # checked before the write: the last good checkpoint stays
            raise SketchifyError(f"{e} after epoch {epoch}; training stopped, {kept(run)}") from None
        with (run / LOG_NAME).open("a") as f:
            f.write(json.dumps(line) + "\n")
        log(f"epoch {epoch}: " + " ".join(f"{k} {v:.4f}" for k, v in line.items() if k != "epoch"))
        save_grid(nets.model, val_set, device, run / "samples" / f"epoch_{epoch:03d}.png")


def export(run: Path, nets: Nets, log) -> None:
    with saving(run):
        nets.model.eval().save_pretrained(run / "model")
        save_discriminator(nets.disc, run / "model")  # so that `--init-from` this model continues its adversary too
    log(f"model saved to {run / 'model'}")


# the run folder


MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME, DISCRIMINATOR_NAME)  # what export writes into RUN/model


def check_run_folder(run: Path) -> None:
    """RUN is a folder (or not there yet) and what a run keeps in it is of the right kind: checked before any data
    is read, so that -o FILE, or a folder where the checkpoint should be, fails at once."""
    if run.exists() and not run.is_dir():
        raise SketchifyError(f"{run}: not a folder; -o names the run folder (made if missing)")
    for folder in (run / "model", run / "samples"):
        if folder.exists() and not folder.is_dir():
            raise SketchifyError(f"{folder}: not a folder; a run keeps its {folder.name} there")
    for path in [run / CHECKPOINT_NAME, run / LOG_NAME, run / TRAINING_NAME, *(run / "model" / n for n in MODEL_FILES)]:
        if path.exists():
            check_regular(path)


def clear_run(run: Path) -> None:
    """Remove what an earlier run left (--overwrite, or a run killed before its first checkpoint): sketchify's own
    files by name, nothing else. The checkpoint goes first, so that a run killed from here on leaves nothing that
    --resume would quietly continue."""
    samples = [p for p in (run / "samples").glob("epoch_*.png") if p.stem[6:].isdecimal()]
    for path in [run / CHECKPOINT_NAME, *(run / "model" / n for n in MODEL_FILES), run / LOG_NAME,
                 run / TRAINING_NAME, *samples]:
        path.unlink(missing_ok=True)
    with suppress(OSError):  # kept if anything else is in it
        (run / "model").rmdir()


def sync_log(path: Path, ckpt: Checkpoint) -> None:
    """Make log.jsonl end at the checkpoint's epoch: lines of later epochs (a run killed after logging, before its
    checkpoint) go, and the checkpoint's own line comes back if a kill lost it."""
    own = ckpt.meta.get("log")
    own = own if own is not None and logged_epoch(own) == ckpt.epoch else None
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    last = ckpt.epoch - 1 if own is not None else ckpt.epoch
    kept_lines = [line for line in lines if (e := logged_epoch(line)) is not None and e <= last]
    text = "".join(f"{line}\n" for line in kept_lines + ([own] if own is not None else []))
    write_durably(path, text.encode())


def logged_epoch(line: str) -> int | None:
    """The epoch of one line of log.jsonl; None for a line a kill cut short."""
    try:
        epoch = json.loads(line)["epoch"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return epoch if isinstance(epoch, int) else None


def kept(run: Path) -> str:
    """What a stopped run leaves to continue from."""
    path = run / CHECKPOINT_NAME
    if is_regular(path):
        return f"the last good checkpoint {path} is intact: --resume continues from it"
    return "no checkpoint was written yet"


@contextmanager
def saving(run: Path):
    """A full disk or a read-only folder while writing the run: one line naming the file, and what is kept."""
    try:
        yield
    except OSError as e:
        raise SketchifyError(f"{e.filename or run}: {e.strerror or e}; training stopped, {kept(run)}") from None


# helpers


def init_distributed() -> tuple[bool, int, int]:
    """Join the process group when started by torchrun; returns (distributed, rank, world size)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False, 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True, dist.get_rank(), dist.get_world_size()


def load_data(opts: TrainOptions, model_cfg: ModelConfig, cfg: TrainConfig, log) -> tuple[SketchDataset, SketchDataset]:
    """Training pairs, and a few fixed validation pairs (some of each style) for the sample grid."""
    pairs = [p for d in opts.data for p in find_pairs(d, model_cfg, opts.default_style)]
    if opts.contours is not None:
        pairs += find_contours(*opts.contours, model_cfg)
    train_pairs, val_pairs = split(pairs, cfg.val_fraction)
    if not train_pairs:
        raise SketchifyError("no training pairs left after the validation split; add more pairs")
    log(f"{len(train_pairs)} training pairs, {len(val_pairs)} held out for validation")
    sizes = dict(load_size=cfg.load_size, image_size=cfg.image_size)
    train_set = SketchDataset(train_pairs, **sizes, augment=True)
    shown = [p for s in range(len(model_cfg.styles)) for p in [q for q in val_pairs if q.style == s][:2]]
    val_set = SketchDataset(shown or train_pairs[:8], **sizes, augment=False)
    return train_set, val_set


def feature_trunk(perceptual: PerceptualLoss | None, cfg: TrainConfig) -> STLPIPS:
    """The frozen network the feature discriminator judges with: ST-LPIPS's AlexNet, shared with the perceptual
    loss when that uses it (one set of weights in memory). Never EfficientNet-Lite0: that is KID's, the judge."""
    if perceptual is not None and cfg.perceptual_net == "alex":
        return perceptual.lpips
    return STLPIPS("alex")


def pretrained_backbone(model: SketchModel) -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 weights for the encoder's front end (batch norms folded in)."""
    from .efficientnet import pretrained_state

    own = model.encoder.backbone.state_dict()
    return {k: v for k, v in pretrained_state(folded=True).items() if k in own}


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


def val_batch(val_set: SketchDataset) -> Batch:
    """The fixed validation crops as one batch."""
    return collate([val_set[i] for i in range(len(val_set))])


@torch.no_grad()
def validate(model: SketchModel, val_set: SketchDataset, device: torch.device) -> float:
    model.eval()
    batch = val_batch(val_set)
    fake = model(batch.photo.to(device), batch.style.to(device), temperature=0.0)
    model.train()
    return float(F.l1_loss(fake.cpu(), batch.sketch))


@torch.no_grad()
def save_grid(model: SketchModel, val_set: SketchDataset, device: torch.device, path: Path) -> None:
    """One column per validation photo: photo, reference sketch, t = 0 sketch, two samples."""
    model.eval()
    batch = val_batch(val_set)
    photo, style = batch.photo.to(device), batch.style.to(device)
    rows = [batch.photo, batch.sketch.expand(-1, 3, -1, -1)]
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
