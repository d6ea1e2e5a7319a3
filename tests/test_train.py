"""Training: steps that lower the loss, the run folder, checkpoints, resume, NaN, and torchrun."""

import json
import os
import subprocess
import sys

import torch
from typer.testing import CliRunner

from conftest import tiny_config
from sketchify.cli import app
from sketchify.data import Pair, SketchDataset, find_pairs
from sketchify.model import PatchDiscriminator, SketchModel
from sketchify.train import GeneratorForward, train_step

runner = CliRunner()


def test_training_steps_lower_the_loss(pair_dir):
    torch.manual_seed(0)
    cfg = tiny_config(channels=16, adv_weight=0.0)
    data = SketchDataset(find_pairs(pair_dir, cfg), cfg, augment=False)
    batch = [torch.stack([torch.as_tensor(data[i][k]) for i in range(8)]) for k in range(3)]
    model, disc = SketchModel(cfg), PatchDiscriminator(channels=4, layers=2)
    opt_g = torch.optim.Adam(model.parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-3)
    steps = [train_step(GeneratorForward(model), disc, opt_g, opt_d, batch, None, cfg, device=torch.device("cpu"))
             for _ in range(60)]
    first, last = steps[0]["l1"], sum(s["l1"] for s in steps[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert set(steps[0]) == {"l1", "ssim", "edge", "kl", "adv", "div", "d"}


def train_cli(pair_dir, run, *extra, epochs=2):
    cfg = run.parent / "tiny.json"
    tiny_config(epochs=epochs).save(cfg)
    return runner.invoke(app, ["train", str(pair_dir), "-o", str(run), "--config", str(cfg), *extra])


def test_augmentation_never_mirrors_a_pair_but_mirrors_unpaired_photos(tmp_path):
    # left half of the photo bright, left half of its sketch dark: a mirrored pair would swap both sides
    from PIL import Image

    photo = Image.new("RGB", (64, 64), "black")
    photo.paste((255, 255, 255), (0, 0, 32, 64))
    sketch = Image.new("L", (64, 64), 255)
    sketch.paste(0, (0, 0, 32, 64))
    photo.save(tmp_path / "p.png")
    sketch.save(tmp_path / "s.png")
    cfg = tiny_config(image_size=48, load_size=64)
    pairs = SketchDataset([Pair("p", tmp_path / "p.png", tmp_path / "s.png", 0)], cfg, augment=True)
    photos = SketchDataset([Pair("p", tmp_path / "p.png", None, 0)], cfg, augment=True)
    for _ in range(20):
        p, s, _ = pairs[0]
        assert p[:, :, :8].mean() > p[:, :, -8:].mean()  # still bright on the left
        assert s[:, :, :8].mean() < s[:, :, -8:].mean()  # still dark on the left
    left_bright = [bool(p[:, :, :8].mean() > p[:, :, -8:].mean()) for p, _, _ in (photos[0] for _ in range(40))]
    assert any(left_bright) and not all(left_bright)


def test_train_writes_a_run_folder_that_convert_uses(pair_dir, photo_dir, tmp_path):
    run = tmp_path / "run"
    result = train_cli(pair_dir, run)
    assert result.exit_code == 0, result.output
    assert (run / "checkpoint.safetensors").exists()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2] and all("val_l1" in e for e in log)
    result = runner.invoke(app, ["convert", str(photo_dir), "-o", str(tmp_path / "out"), "--weights", str(run / "model")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_existing_run_needs_resume_or_overwrite_and_resume_continues(pair_dir, tmp_path):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).exit_code == 0
    result = train_cli(pair_dir, run, epochs=1)
    assert result.exit_code == 2 and "--resume" in result.output and "--overwrite" in result.output

    # the checkpoint holds the optimiser state, and resume reads it back
    from safetensors import safe_open

    with safe_open(str(run / "checkpoint.safetensors"), "pt") as f:
        assert f.metadata()["epoch"] == "1"
        assert any(k.startswith("opt_g.") for k in f.keys())
    result = runner.invoke(app, ["train", str(pair_dir), "-o", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output
    log = [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert log == [1]  # the checkpoint's config says 1 epoch: nothing more to train, the model is exported again
    assert (run / "model" / "model.safetensors").exists()

    result = runner.invoke(app, ["train", str(pair_dir), "-o", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    log = [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2]  # --epochs extends a resumed run

    assert train_cli(pair_dir, run, "--overwrite", epochs=1).exit_code == 0


def test_resume_on_a_corrupt_checkpoint_says_so_and_keeps_it(pair_dir, tmp_path):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).exit_code == 0
    ckpt = run / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    before = ckpt.read_bytes()
    result = runner.invoke(app, ["train", str(pair_dir), "-o", str(run), "--resume"])
    assert result.exit_code == 2
    assert "checkpoint.safetensors" in result.output and "Traceback" not in result.output
    assert ckpt.read_bytes() == before


def test_nan_loss_stops_with_the_last_checkpoint_intact(pair_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).exit_code == 0
    before = (run / "checkpoint.safetensors").read_bytes()
    import sketchify.train as train_module

    monkeypatch.setattr(train_module, "edge_l1", lambda a, b: torch.tensor(float("nan")))
    cfg = json.loads((run / "config.json").read_text())
    cfg["epochs"] = 3
    (tmp_path / "longer.json").write_text(json.dumps(cfg))
    result = runner.invoke(app, ["train", str(pair_dir), "-o", str(run), "--config", str(tmp_path / "longer.json"), "--overwrite"])
    assert result.exit_code == 2
    assert "nan" in result.output and "intact" in result.output
    assert (run / "checkpoint.safetensors").read_bytes() == before


def test_bad_training_data_is_a_clear_error(tmp_path):
    (tmp_path / "data" / "photos").mkdir(parents=True)
    result = runner.invoke(app, ["train", str(tmp_path / "data"), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and "sketches/ is missing" in result.output


def test_torchrun_two_cpu_processes(pair_dir, tmp_path):
    cfg = tmp_path / "tiny.json"
    tiny_config(epochs=1).save(cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "sketchify", "train", str(pair_dir), "-o", str(tmp_path / "run"), "--config", str(cfg), "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
    assert proc.stdout.count("model saved") == 1  # only rank 0 writes


def test_time_limit_fits_the_epochs_to_the_pace_so_far():
    import time

    from sketchify.train import fit_epochs

    cpu = torch.device("cpu")
    two_minutes_ago = time.monotonic() - 120
    # 2 epochs in 2 minutes: 8 more fit in the 8.5 minutes left of 10.5
    assert fit_epochs(400, 2, 0, two_minutes_ago, 10.5, False, cpu) == 10
    assert fit_epochs(6, 2, 0, two_minutes_ago, 10.5, False, cpu) == 6  # never more than planned
    assert fit_epochs(400, 12, 10, two_minutes_ago, 10.5, False, cpu) == 20  # a resumed run counts its own epochs
    assert fit_epochs(400, 2, 0, two_minutes_ago, 1.0, False, cpu) == 2  # past the limit: stop here


def test_training_with_worker_processes(pair_dir, tmp_path):
    run = tmp_path / "run"
    result = train_cli(pair_dir, run, "--workers", "1", epochs=1)
    assert result.exit_code == 0, result.output
    assert (run / "model" / "model.safetensors").exists()
