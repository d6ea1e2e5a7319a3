"""Training: steps that lower the loss, the run folder, --set, checkpoints, resume, --init-from, NaN, and torchrun."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from conftest import cli, tiny_config, tiny_settings, tiny_training

from sketchify.data import Pair, SketchDataset, find_contours, find_pairs
from sketchify.model import Discriminator, SketchModel
from sketchify.perceptual import NETS
from sketchify.serialization import read_checkpoint, restore
from sketchify.step import GeneratorForward, collate, train_step


def dataset(pairs, cfg, augment):
    return SketchDataset(pairs, load_size=cfg.load_size, image_size=cfg.image_size, augment=augment)


def steps_on_one_batch(pair_dir, cfg, n: int, **judges):
    """n training steps of a fresh small model on the same 8 pairs: each step's losses, and the model's parts.
    judges: train_step's perceptual and trunk networks, for the terms that need them."""
    torch.manual_seed(0)
    shape = tiny_config(widths=(8, 8, 8, 16, 16))
    batch = collate([dataset(find_pairs(pair_dir, shape), cfg, augment=False)[i] for i in range(8)])
    model, disc = SketchModel(shape), Discriminator(shape, feature_channels=NETS["alex"][1])
    opt_g = torch.optim.Adam(model.parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-3)
    step = lambda c: train_step(GeneratorForward(model), disc, opt_g, opt_d, batch, c, styles=shape.styles, **judges)
    return [step(cfg) for _ in range(n)], step


def test_training_steps_lower_the_loss(pair_dir):
    steps, _ = steps_on_one_batch(pair_dir, tiny_training(loss_weights={"adv": 0.0}), 60)
    first, last = steps[0]["tone"], sum(s["tone"] for s in steps[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def train_cli(pair_dir, run, *extra, epochs=2):
    return cli("train", pair_dir, "-o", run, *tiny_settings(epochs=epochs), *extra)


def log_epochs(run):
    return [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_augmentation_never_mirrors_a_pair(tmp_path):
    # left half of the photo bright, left half of its sketch dark: a mirrored pair would swap both sides
    from PIL import Image

    photo = Image.new("RGB", (64, 64), "black")
    photo.paste((255, 255, 255), (0, 0, 32, 64))
    sketch = Image.new("L", (64, 64), 255)
    sketch.paste(0, (0, 0, 32, 64))
    photo.save(tmp_path / "p.png")
    sketch.save(tmp_path / "s.png")
    cfg = tiny_training(image_size=48, load_size=64)
    pairs = dataset([Pair("p", tmp_path / "p.png", tmp_path / "s.png", 0)], cfg, augment=True)
    for _ in range(20):
        p, s = pairs[0]["photo"], pairs[0]["sketch"]
        assert p[:, :, :8].mean() > p[:, :, -8:].mean()  # still bright on the left
        assert s[:, :, :8].mean() < s[:, :, -8:].mean()  # still dark on the left


def test_contours_are_pairs_in_the_contour_style_drawn_dark_where_people_saw_a_boundary(tmp_path):
    from PIL import Image

    (tmp_path / "photos").mkdir(), (tmp_path / "bounds").mkdir()
    Image.new("RGB", (64, 48), "gray").save(tmp_path / "photos" / "scene.jpg")
    Image.new("RGB", (64, 48), "gray").save(tmp_path / "photos" / "unlabelled.jpg")
    boundary = Image.new("L", (64, 48), 0)
    boundary.paste(255, (30, 0, 34, 48))  # every annotator drew a vertical line in the middle
    boundary.save(tmp_path / "bounds" / "scene.png")
    shape = tiny_config()
    pairs = find_contours(tmp_path / "photos", tmp_path / "bounds", shape)
    assert [(p.name, shape.styles[p.style]) for p in pairs] == [("scene", "contour")]
    sketch = dataset(pairs, tiny_training(image_size=32, load_size=48), augment=False)[0]["sketch"][0]
    assert sketch[:, 15:17].max() < 0.2 and sketch[:, :8].min() > 0.95  # a dark stroke on white paper


def test_train_writes_a_run_folder_that_convert_uses(pair_dir, photo_dir, tmp_path):
    run = tmp_path / "run"
    result = train_cli(pair_dir, run, "--set", "loss_weights.adv=0.2")
    assert result.code == 0, result.text
    assert (run / "checkpoint.safetensors").exists()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert log_epochs(run) == [1, 2]
    settings = json.loads((run / "training.json").read_text())
    assert settings["loss_weights"]["adv"] == 0.2 and settings["image_size"] == 32
    assert set(json.loads((run / "model" / "config.json").read_text())) >= {"widths", "styles"}
    assert "lr" not in json.loads((run / "model" / "config.json").read_text())  # the model folder holds the shape
    result = cli("convert", photo_dir, "-o", tmp_path / "out", "--weights", run / "model")
    assert result.code == 0, result.text
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_set_and_config_are_validated_before_any_work(pair_dir, tmp_path):
    for bad, says in [("epochs=x", "not a valid int"), ("lr=-1", "lr should be"), ("depth=3", "KEY one of"),
                      ("loss_weights.sharpness=1", "unknown loss 'sharpness'"), ("image_size=30", "multiple of 16"),
                      ("style_diversity_margin.crayon=0.1", "crayon"),
                      ("loss_weights.sample_div=1", "shrinks the 32 px training crop")]:
        result = train_cli(pair_dir, tmp_path / "run", "--set", bad)
        assert result.code == 2 and says in result.text, (bad, result.text)
        assert not (tmp_path / "run").exists()
    (tmp_path / "t.json").write_text(json.dumps({"epochs": "many"}))
    result = train_cli(pair_dir, tmp_path / "run", "--config", tmp_path / "t.json")
    assert result.code == 2 and "t.json" in result.text and "epochs" in result.text


def test_existing_run_needs_resume_or_overwrite_and_resume_continues(pair_dir, tmp_path):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).code == 0
    result = train_cli(pair_dir, run, epochs=1)
    assert result.code == 2 and "--resume" in result.text and "--overwrite" in result.text

    result = cli("train", pair_dir, "-o", run, "--resume")
    assert result.code == 0, result.text
    assert "resumed" in result.text and "changed" not in result.text
    assert log_epochs(run) == [1]  # the checkpoint says 1 epoch: nothing more to train, the model is exported again
    assert (run / "model" / "model.safetensors").exists()

    result = cli("train", pair_dir, "-o", run, "--resume", "--epochs", "2",
                                 "--set", "loss_weights.tone=7")
    assert result.code == 0, result.text
    assert "epochs: 1 -> 2" in result.text and "loss_weights.tone: 1.0 -> 7.0" in result.text
    assert log_epochs(run) == [1, 2]  # --epochs extends a resumed run
    assert read_checkpoint(run / "checkpoint.safetensors").train.loss_weights["tone"] == 7.0

    result = cli("train", pair_dir, "-o", run, "--resume", "--set", "widths=8,8,8,8,8")
    assert result.code == 2 and "widths" in result.text and "--init-from" in result.text

    assert train_cli(pair_dir, run, "--overwrite", epochs=1).code == 0


def test_init_from_grows_a_model_that_still_draws_the_same_and_trains_on(pair_dir, tmp_path):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).code == 0
    grown_run = tmp_path / "grown"
    styles = "light-pencil,bold-ink,shaded-pencil,portrait,contour,charcoal"
    result = train_cli(pair_dir, grown_run, "--init-from", run, "--set", "deep_blocks=3", "--set", f"styles={styles}",
                       "--set", "lr=1e-9", epochs=1)
    assert result.code == 0, result.text
    assert "starting from" in result.text and "grown" in result.text

    ckpt = read_checkpoint(run / "checkpoint.safetensors")
    old = SketchModel(ckpt.model)
    restore(run / "checkpoint.safetensors", ckpt, modules={"model": old}, optimizers={})
    grown = SketchModel.from_pretrained(grown_run / "model")
    assert len(grown.generator.blocks) == 3 and grown.config.styles[-1] == "charcoal"
    photo, style = torch.rand(2, 3, 32, 32), torch.tensor([0, 4])
    eps = [torch.randn(2, k, 32 // s, 32 // s) for k, s in zip(old.config.latent_channels, (2, 4, 8, 16))]
    with torch.no_grad():  # an epoch at a learning rate of 1e-9 leaves the grown model drawing what the old one drew
        torch.testing.assert_close(grown(photo, style, eps=eps), old.eval()(photo, style, eps=eps), atol=1e-4, rtol=0)

    # a model folder works too; a shape that cannot grow is a one-line error
    assert train_cli(pair_dir, tmp_path / "again", "--init-from", run / "model", epochs=1).code == 0
    result = train_cli(pair_dir, tmp_path / "wider", "--init-from", run / "model", "--set", "widths=8,8,8,8,8",
                       epochs=1)
    assert result.code == 2 and "cannot change widths" in result.text


def test_resume_on_a_corrupt_checkpoint_says_so_and_keeps_it(pair_dir, tmp_path):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).code == 0
    ckpt = run / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    before = ckpt.read_bytes()
    result = cli("train", pair_dir, "-o", run, "--resume")
    assert result.code == 2
    assert "checkpoint.safetensors" in result.text
    assert ckpt.read_bytes() == before


def test_nan_loss_stops_with_the_last_checkpoint_intact(pair_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert train_cli(pair_dir, run, epochs=1).code == 0
    before = (run / "checkpoint.safetensors").read_bytes()
    import sketchify.step

    monkeypatch.setattr(sketchify.step, "tone_l1", lambda a, b: torch.tensor(float("nan")))
    result = cli("train", pair_dir, "-o", run, "--resume", "--epochs", "3")
    assert result.code == 2
    assert "nan" in result.text and "epoch 2" in result.text and "intact" in result.text
    assert (run / "checkpoint.safetensors").read_bytes() == before


def test_bad_training_data_is_a_clear_error(tmp_path):
    (tmp_path / "data" / "photos").mkdir(parents=True)
    result = cli("train", tmp_path / "data", "-o", tmp_path / "run")
    assert result.code == 2 and "sketches/ is missing" in result.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(pair_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "sketchify", "train", str(pair_dir), "-o", str(tmp_path / "run"), *tiny_settings(epochs=1),
           "--device", "cpu"]
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
    assert result.code == 0, result.text
    assert (run / "model" / "model.safetensors").exists()


def test_the_sample_diversity_term_pushes_two_samples_apart(pair_dir):
    pytest.importorskip("stlpips_pytorch")
    from sketchify.losses import PerceptualLoss

    torch.manual_seed(0)
    only = {k: 0.0 for k in tiny_training().loss_weights}
    shape, cfg = tiny_config(), tiny_training(loss_weights={**only, "sample_div": 1.0}, sample_diversity_margin=1.0,
                                              sample_diversity_pool=1)
    batch = collate([dataset(find_pairs(pair_dir, shape), cfg, augment=False)[i] for i in range(4)])
    disc = Discriminator(shape, feature_channels=NETS["alex"][1])
    torch.manual_seed(0)  # the model and its noise as before the discriminator grew a second judge
    model = SketchModel(shape)
    opt_g, opt_d = torch.optim.Adam(model.parameters(), lr=3e-3), torch.optim.Adam(disc.parameters(), lr=1e-3)
    perceptual = PerceptualLoss("alex")
    steps = [train_step(GeneratorForward(model), disc, opt_g, opt_d, batch, cfg, styles=shape.styles,
                        perceptual=perceptual) for _ in range(25)]
    assert {"perceptual", "sample_div"} <= set(steps[0])  # both samples scored against the reference
    divs = [s["sample_div"] for s in steps]
    assert sum(divs[-5:]) / 5 < divs[0] - 0.05, divs


def test_the_sample_diversity_term_trains_beside_the_mean_sketch(pair_dir):
    pytest.importorskip("stlpips_pytorch")
    from sketchify.losses import PerceptualLoss

    only = {k: 0.0 for k in tiny_training().loss_weights}
    cfg = tiny_training(loss_weights={**only, "sample_div": 1.0, "mean": 1.0}, sample_diversity_pool=1)
    (terms,), _ = steps_on_one_batch(pair_dir, cfg, 1, perceptual=PerceptualLoss("alex"))
    assert {"perceptual", "sample_div", "mean"} <= set(terms)  # the two samples apart, the mean sketch its own term


def test_the_feature_discriminator_learns_to_tell_drawings_from_generated_sketches(pair_dir):
    pytest.importorskip("stlpips_pytorch")
    from sketchify.perceptual import STLPIPS

    torch.manual_seed(0)
    only = {k: 0.0 for k in tiny_training().loss_weights}
    shape, cfg = tiny_config(), tiny_training(loss_weights={**only, "adv_features": 1.0})
    batch = collate([dataset(find_pairs(pair_dir, shape), cfg, augment=False)[i] for i in range(4)])
    model, disc = SketchModel(shape), Discriminator(shape, feature_channels=NETS["alex"][1])
    opt_g, opt_d = torch.optim.Adam(model.parameters(), lr=1e-4), torch.optim.Adam(disc.parameters(), lr=2e-3)
    trunk = STLPIPS("alex")
    steps = [train_step(GeneratorForward(model), disc, opt_g, opt_d, batch, cfg, styles=shape.styles, trunk=trunk)
             for _ in range(12)]
    assert "adv_features" in steps[0]
    assert sum(s["d"] for s in steps[-3:]) / 3 < 0.7 * steps[0]["d"], [s["d"] for s in steps]
    with torch.no_grad():  # the drawings now score nearer "real" (1) than the model's sketches
        fakes, _, _ = GeneratorForward(model)(batch.photo, batch.style)
        real = disc.features(trunk.features(batch.sketch), batch.style)
        fake = disc.features(trunk.features(fakes[:4]), batch.style)
    assert sum(r.mean() for r in real) > sum(f.mean() for f in fake)


def test_zoom_windows_pair_an_enlarged_photo_window_with_the_same_window_of_the_sketch():
    from sketchify.step import zoom_windows

    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(4, 1, 8, 8), size=(64, 64), mode="bilinear")
    zoom = zoom_windows(smooth.repeat(1, 3, 1, 1), smooth, zooms=(2.0, 2.0))
    assert zoom.photo.shape == (4, 3, 64, 64) and zoom.sketch.shape == (4, 1, 32, 32)
    back = torch.nn.functional.interpolate(zoom.photo[:, :1], size=(32, 32), mode="area")
    assert (back - zoom.sketch).abs().mean() < 0.01  # the same window, scaled back
    assert (back - zoom.sketch.roll(1, 0)).abs().mean() > 0.05  # and each pair its own window


def test_the_zoom_term_teaches_likeness_at_a_larger_scale(pair_dir):
    only = {k: 0.0 for k in tiny_training().loss_weights}
    steps, step = steps_on_one_batch(pair_dir, tiny_training(loss_weights={**only, "zoom": 1.0}), 40)
    first, last = steps[0]["zoom"], sum(s["zoom"] for s in steps[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert "zoom" not in step(tiny_training())  # a weight of 0 draws no windows


def test_the_mean_term_teaches_the_mean_sketch(pair_dir):
    only = {k: 0.0 for k in tiny_training().loss_weights}
    steps, step = steps_on_one_batch(pair_dir, tiny_training(loss_weights={**only, "mean": 1.0}), 40)
    first, last = steps[0]["mean"], sum(s["mean"] for s in steps[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert "mean" not in step(tiny_training())  # a weight of 0 decodes no mean sketch


def test_the_mean_sketch_is_decoded_after_the_two_samples():
    torch.manual_seed(0)
    model = SketchModel(tiny_config())
    photo, style = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    fakes, _, _ = GeneratorForward(model)(photo, style, None, True)
    assert fakes.shape[0] == 6
    with torch.no_grad():
        assert torch.allclose(fakes[4:], model(photo, style, temperature=0.0), atol=1e-5)
        assert not torch.allclose(fakes[:2], fakes[4:], atol=1e-3)  # the first two are samples, not the mean


def test_diff_augment_moves_and_cuts_on_paper():
    from sketchify.step import diff_augment

    torch.manual_seed(0)
    ink = torch.zeros(16, 1, 32, 32, requires_grad=True)  # an all-black page shows where paper came in
    out = diff_augment(ink)
    assert out.shape == ink.shape
    paper = (out == 1).float().mean(dim=(1, 2, 3))
    assert (paper > 0).all() and (paper < 0.75).all()  # every one got some paper (shift or cut), none is blank
    assert len(set(paper.tolist())) > 4  # each sketch its own shift and hole
    out.sum().backward()
    assert ink.grad.abs().sum() > 0


def test_a_trained_model_ships_its_discriminator_and_init_from_continues_it(pair_dir, tmp_path):
    from sketchify.serialization import DISCRIMINATOR_NAME, load_weights

    first = tmp_path / "first"
    assert train_cli(pair_dir, first, epochs=1).code == 0
    saved = load_weights(first / "model" / DISCRIMINATOR_NAME)
    assert any(k.startswith("patch.") for k in saved) and any(k.startswith("features.") for k in saved)
    second = tmp_path / "second"
    result = train_cli(pair_dir, second, "--init-from", first / "model", epochs=1)
    assert result.code == 0, result.text
    assert "starts afresh" not in result.text
    ckpt = read_checkpoint(second / "checkpoint.safetensors")
    assert ckpt.epoch == 1
