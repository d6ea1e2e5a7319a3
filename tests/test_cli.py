"""Each command through Typer's runner on a tiny model and tiny images."""

import json
import os
import subprocess
import sys

import numpy as np
from conftest import cli, lively, photo, sketch_of, tiny_config
from PIL import Image

from sketchify.model import SketchModel


def test_convert_folder_and_files_keeps_size_and_reports(tiny_model_dir, photo_dir, tmp_path):
    extra = tmp_path / "wide.png"
    photo(7, (90, 30)).save(extra)
    out = tmp_path / "out"
    result = cli("convert", photo_dir, extra, "-o", out, "--weights", tiny_model_dir)
    assert result.code == 0, result.text
    assert "4 converted, 0 skipped, 0 failed" in result.text
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png", "wide.png"]
    assert Image.open(out / "wide.png").size == (90, 30)
    assert Image.open(out / "img0.png").mode == "L"


def test_convert_skips_existing_unless_overwrite(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "out"
    assert cli("convert", photo_dir, "-o", out, "--weights", tiny_model_dir).code == 0
    os.utime(out / "img0.png", (0, 0))  # a later write would show in the time
    result = cli("convert", photo_dir, "-o", out, "--weights", tiny_model_dir)
    assert "0 converted, 3 skipped" in result.text
    assert (out / "img0.png").stat().st_mtime == 0
    result = cli("convert", photo_dir, "-o", out, "--weights", tiny_model_dir, "--overwrite")
    assert "3 converted" in result.text
    assert (out / "img0.png").stat().st_mtime > 0 and Image.open(out / "img0.png").size == (48, 40)


def test_convert_formats_style_seed_and_temperature(tiny_model_dir, photo_dir, tmp_path):
    for fmt in ("jpg", "webp"):
        result = cli("convert", photo_dir, "-o", tmp_path / fmt, "--weights", tiny_model_dir, "--format", fmt,
                        "--style", "shaded-pencil", "--batch-size", "2")
        assert result.code == 0, result.text
        assert Image.open(tmp_path / fmt / f"img0.{fmt}").format == {"jpg": "JPEG", "webp": "WEBP"}[fmt]
    runs = []
    for name in ("a", "b"):
        assert cli("convert", photo_dir, "-o", tmp_path / name, "--weights", tiny_model_dir,
                      "--seed", "3", "--temperature", "1").code == 0
        runs.append(np.asarray(Image.open(tmp_path / name / "img1.png")))
    assert np.array_equal(*runs)


def test_convert_recursive_keeps_structure(tiny_model_dir, photo_dir, tmp_path):
    (photo_dir / "sub" / "deeper").mkdir(parents=True)
    photo(9).save(photo_dir / "sub" / "deeper" / "x.jpg")
    out = tmp_path / "out"
    assert cli("convert", photo_dir, "-o", out, "--weights", tiny_model_dir).code == 0
    assert not (out / "sub").exists()  # without --recursive, subfolders are left alone
    assert cli("convert", photo_dir, "-o", out, "-r", "--weights", tiny_model_dir).code == 0
    assert (out / "sub" / "deeper" / "x.png").exists()


def test_convert_unknown_style_and_device_errors(tiny_model_dir, photo_dir, tmp_path):
    result = cli("convert", photo_dir, "-o", tmp_path / "o", "--weights", tiny_model_dir, "--style", "crayon")
    assert result.code == 2 and "unknown style 'crayon'" in result.text
    result = cli("convert", photo_dir, "-o", tmp_path / "o", "--weights", tmp_path / "nowhere")
    assert result.code == 2 and "nowhere" in result.text
    import torch

    if not torch.cuda.is_available():
        result = cli("convert", photo_dir, "-o", tmp_path / "o", "--weights", tiny_model_dir, "--device", "cuda")
        assert result.code == 2 and "no CUDA GPU" in result.text


def test_sample_writes_n_sketches_and_a_sheet(tiny_model_dir, photo_dir, tmp_path):
    out = tmp_path / "s"
    result = cli("sample", photo_dir / "img0.jpg", "--n", 3, "-o", out, "--seed", 1, "--weights", tiny_model_dir)
    assert result.code == 0, result.text
    assert sorted(p.name for p in out.iterdir()) == ["img0_0.png", "img0_1.png", "img0_2.png", "img0_sheet.png"]
    sheet = Image.open(out / "img0_sheet.png")
    assert sheet.width > 3 * sheet.height  # photo + 3 samples side by side
    first = np.asarray(Image.open(out / "img0_0.png"))
    result = cli("sample", photo_dir / "img0.jpg", "--n", 3, "-o", out, "--seed", 1, "--weights", tiny_model_dir)
    assert result.code == 2 and "--overwrite" in result.text
    assert cli("sample", photo_dir / "img0.jpg", "--n", 3, "-o", out, "--seed", 1, "--overwrite",
                  "--weights", tiny_model_dir).code == 0
    assert np.array_equal(first, np.asarray(Image.open(out / "img0_0.png")))  # the seed repeats


def test_sample_draws_at_the_model_s_own_temperature_unless_told(photo_dir, tmp_path):
    model = tmp_path / "calm"
    lively(SketchModel(tiny_config(sample_temperature=0.0))).save_pretrained(model)
    drawn = lambda out: [np.asarray(Image.open(out / f"img0_{i}.png")) for i in range(3)]
    assert cli("sample", photo_dir / "img0.jpg", "--n", 3, "-o", tmp_path / "a", "--weights", model).code == 0
    first, *rest = drawn(tmp_path / "a")
    assert all(np.array_equal(first, other) for other in rest)  # its sample_temperature is 0: the mean, 3 times
    assert cli("sample", photo_dir / "img0.jpg", "--n", 3, "-o", tmp_path / "b", "-t", 2, "--weights", model).code == 0
    first, *rest = drawn(tmp_path / "b")
    assert not any(np.array_equal(first, other) for other in rest)


def test_eval_scores_model_and_baselines(tiny_model_dir, pair_dir, tmp_path):
    result = cli("eval", pair_dir, "--split", "all", "--n", 2, "--weights", tiny_model_dir,
                 "--json", tmp_path / "s.json")
    assert result.code == 0, result.text
    scores = json.loads((tmp_path / "s.json").read_text())
    assert set(scores) == {"light-pencil", "bold-ink"}
    row = scores["light-pencil"]
    assert set(row) == {"model t=0", "model samples", "blank page", "pencil filter"}
    assert row["blank page"]["n"] == 6
    assert 0 <= row["model t=0"]["mae"] <= 1 and -1 <= row["pencil filter"]["ssim"] <= 1
    assert "diversity" in row["model samples"]
    assert "blank page" in result.text and "pencil filter" in result.text
    # the headline: ST-LPIPS for every method, KID for each set of sketches against the references
    assert row["blank page"]["stlpips"] > row["pencil filter"]["stlpips"] >= 0
    assert row["model samples"]["worst_stlpips"] >= row["model samples"]["stlpips"]
    assert row["blank page"]["kid"] > row["pencil filter"]["kid"]
    assert all("kid" in row[method] for method in row)  # the samples are judged for realism too


def test_eval_scores_contours_on_the_held_out_scenes_only(tiny_model_dir, tmp_path):
    from sketchify.data import is_validation

    photos, maps = tmp_path / "scenes", tmp_path / "boundaries"
    photos.mkdir(), maps.mkdir()
    for i in range(12):
        img = photo(i, size=(160, 120))  # tolerance: 1.5 px
        img.save(photos / f"s{i}.png")
        if i != 3:  # one photo without a map: not scored
            sketch_of(img).point(lambda v: 255 if v < 128 else 0).save(maps / f"s{i}.png")  # boundary: its strong edges
    held_out = sum(is_validation(f"s{i}", 0.1) for i in range(12) if i != 3)
    result = cli("eval", "--contours", photos, maps, "--split", "all", "--weights", tiny_model_dir,
                    "--json", tmp_path / "s.json")
    assert result.code == 0, result.text
    scores = json.loads((tmp_path / "s.json").read_text())["contours"]
    assert scores["gradient magnitude"]["n"] == 11
    assert scores["gradient magnitude"]["f"] > 0.8  # the maps are the photos' own edges
    assert 0 <= scores["model t=0"]["f"] <= 1
    result = cli("eval", "--contours", photos, maps, "--split", "val", "--weights", tiny_model_dir,
                    "--json", tmp_path / "v.json")
    assert result.code == 0 and held_out == 1, result.text
    assert json.loads((tmp_path / "v.json").read_text())["contours"]["pencil filter"]["n"] == held_out


def test_eval_metrics_on_known_images():
    import torch

    from sketchify.evaluate import mae, ssim

    a = torch.rand(1, 1, 32, 32)
    assert ssim(a, a) == 1.0 or abs(ssim(a, a) - 1.0) < 1e-6
    assert mae(a, a) == 0.0
    assert mae(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)) == 1.0
    assert ssim(a, 1 - a) < 0


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from sketchify.cli import app; sys.argv=['sketchify','--help']\n" \
           "try:\n    app()\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "convert" in proc.stdout and "sample" in proc.stdout and "train" in proc.stdout


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "sketchify", "convert", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--recursive" in proc.stdout


def test_library_api_without_cli(tiny_model_dir):
    from sketchify import Sketcher

    sketcher = Sketcher.from_pretrained(tiny_model_dir, device="cpu")
    img = photo(5, (33, 21))
    assert sketcher.sketch(img, style="portrait", seed=0).size == (33, 21)
    assert len(sketcher.samples(img, 4, seed=0)) == 4
    assert sketcher.styles == ("light-pencil", "bold-ink", "shaded-pencil", "portrait", "contour")


def test_shipped_weights_load():
    from sketchify import Sketcher

    sketcher = Sketcher.from_pretrained(device="cpu")
    assert sketcher.sketch(photo(6, (64, 48))).size == (64, 48)
