"""python -m sketchify.pack: training data shrunk to the load size reads back as the same pairs."""

from __future__ import annotations

from conftest import digests, size_of, tiny_config
from PIL import Image

from sketchify.data import SketchDataset, find_pairs
from sketchify.pack import main as pack_main


def test_a_pack_holds_the_same_pairs_at_the_load_size(pair_dir, tmp_path, capsys):
    out = tmp_path / "packed"
    assert pack_main([str(pair_dir), "-o", str(out), "--load-size", "32"]) == 0
    assert "files packed" in capsys.readouterr().out
    shape = tiny_config()
    before, after = find_pairs(pair_dir, shape), find_pairs(out / pair_dir.name, shape)
    assert [(p.name, p.style) for p in before] == [(p.name, p.style) for p in after]
    assert all(min(size_of(p.photo)) == 32 and min(size_of(p.sketch)) == 32 for p in after)
    assert all(Image.open(p.sketch).mode == "L" for p in after)  # grey drawings are stored grey
    # training reads the pack as it reads the originals, up to JPEG's re-encoding
    load = lambda pairs: SketchDataset(pairs, load_size=32, image_size=32, augment=False)
    for a, b in zip(load(before), load(after)):
        assert (a["photo"] - b["photo"]).abs().mean() < 0.05 and (a["sketch"] - b["sketch"]).abs().mean() < 0.05


def test_a_pack_never_overlaps_its_sources_and_names_what_it_skipped(pair_dir, tmp_path, capsys):
    kept = digests(pair_dir)
    assert pack_main([str(pair_dir), "-o", str(pair_dir / "packed")]) == 1
    assert "overlap" in capsys.readouterr().err and digests(pair_dir) == kept
    (pair_dir / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "packed"
    assert pack_main([str(pair_dir), "-o", str(out), "--load-size", "32"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    assert len(list((out / pair_dir.name / "photos").iterdir())) == 12  # the rest is packed all the same


def test_a_pack_skips_a_photo_too_long_and_thin_to_train_on(pair_dir, tmp_path, capsys):
    Image.new("RGB", (2000, 1), "white").save(pair_dir / "photos" / "thin.png")  # 480,000 x 240 at the load size
    out = tmp_path / "packed"
    assert pack_main([str(pair_dir), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "thin.png" in err and "2000x1" in err
    assert not (out / pair_dir.name / "photos" / "thin.png").exists()
