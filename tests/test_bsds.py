"""The BSDS500 benchmark (sketchify.bsds) on tiny synthetic edge maps and a tiny ground-truth .mat."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from sketchify.bsds import (
    best_interpolated,
    boundary_counts,
    bsds_scores,
    load_groundtruth,
    non_maximum_suppression,
    precision_recall_f,
    thin,
)

H, W = 200, 300  # the match radius is 0.0075 x the diagonal: 2.7 px here (4.3 px on BSDS's 321 x 481)


def frame(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """Four one-pixel lines around a rectangle, as an annotator's boundaries; the corners are left open because
    thinning (MATLAB's too) cuts the corner pixel of an L, and these shapes should pass through it unchanged."""
    out = np.zeros((H, W), bool)
    out[[top, bottom], left + 5:right - 4] = True
    out[top + 5:bottom - 4, [left, right]] = True
    return out


def shifted(mask: np.ndarray, down: int, right: int) -> np.ndarray:
    return np.roll(mask, (down, right), axis=(0, 1))


def scores(edges: np.ndarray, annotators: list[np.ndarray]) -> tuple[float, float]:
    """Precision and recall of a binary edge map: taken as is, at the 0.5 threshold."""
    counts = boundary_counts(edges.astype(float), annotators, thresholds=np.array([0.5]), suppress=False)
    precision, recall, _ = precision_recall_f(counts)
    return float(precision[0]), float(recall[0])


@pytest.fixture
def annotators() -> list[np.ndarray]:
    # two people: one drew the outer box only, the other the outer box and an inner one
    outer = frame(40, 50, 160, 250)
    return [outer, outer | frame(80, 100, 120, 200)]


def test_thinning_gives_the_documented_result_of_bwmorph_thin():
    square = np.zeros((7, 7), bool)
    square[1:-1, 2:-2] = True
    square[0, 1] = True
    expected = np.zeros((7, 7), bool)
    expected[[0, 1, 2, 3, 4], [1, 2, 3, 3, 3]] = True  # MATLAB's and scikit-image's documented example
    assert np.array_equal(thin(square), expected)


def test_thinning_makes_a_thick_bar_one_pixel_wide_without_breaking_it():
    bar = np.zeros((20, 40), bool)
    bar[8:12, 5:35] = True
    line = thin(bar)
    assert line.sum(axis=0)[8:32].max() == 1  # one pixel across, along its middle
    assert line.sum() >= 25  # still (nearly) its whole length


def test_suppression_keeps_one_pixel_across_a_blurred_line_at_its_centre():
    from scipy.ndimage import gaussian_filter

    edges = np.zeros((50, 60))
    edges[:, 30] = 1
    edges = gaussian_filter(edges, 2)
    edges /= edges.max()
    kept = non_maximum_suppression(edges) > 0.1
    assert np.array_equal(np.argwhere(kept)[:, 1], np.full(len(np.argwhere(kept)), 30))
    assert kept[5:45, 30].all()  # the length of the line stays; the 5 px borders fade out


def test_one_annotators_boundaries_are_all_right_but_miss_what_only_the_other_drew(annotators):
    outer_only, both = annotators
    precision, recall = scores(outer_only, annotators)
    assert precision == 1
    assert recall == pytest.approx(2 * outer_only.sum() / (outer_only.sum() + both.sum()))
    assert scores(both, annotators) == (1, 1)  # every detected pixel is right for one annotator or the other


def test_a_one_pixel_shift_still_matches_and_a_far_one_does_not(annotators):
    outer = annotators[:1]
    assert scores(shifted(outer[0], 1, 1), outer) == (1, 1)  # 1.4 px off
    assert scores(shifted(outer[0], 2, 1), outer) == (1, 1)  # 2.2 px
    assert scores(shifted(outer[0], 3, 3), outer) == (0, 0)  # 4.2 px


def test_matching_is_one_to_one_so_a_doubled_line_is_half_wrong(annotators):
    outer = annotators[:1]
    # a second top and bottom line 2 px below the first: thinning keeps both, and both lie within reach of the
    # boundary (the lenient contour F calls every pixel right), but each boundary pixel pays for one only
    doubled = outer[0] | shifted(outer[0], 2, 0)
    precision, recall = scores(doubled, outer)
    assert recall == 1
    assert precision == pytest.approx(outer[0].sum() / doubled.sum())
    assert precision < 0.65


def test_an_empty_map_scores_zero_without_dividing_by_zero(annotators):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scores(np.zeros((H, W)), annotators) == (0, 0)
        result = bsds_scores([boundary_counts(np.zeros((H, W)), annotators)])
    assert result["ods"] == result["ois"] == result["ap"] == 0


def test_ois_picks_each_images_threshold_and_ods_one_for_the_set(annotators):
    outer = annotators[:1]
    # image 1: the box at strength 0.3, clutter at 0.2; image 2: the box at 0.9, clutter at 0.7
    clutter = frame(10, 10, 190, 290)
    faint = np.where(outer[0], 0.3, np.where(clutter, 0.2, 0.0))
    strong = np.where(outer[0], 0.9, np.where(clutter, 0.7, 0.0))
    thresholds = np.linspace(0.05, 0.95, 19)
    counts = [boundary_counts(e, outer, thresholds=thresholds, suppress=False) for e in (faint, strong)]
    result = bsds_scores(counts, thresholds)
    assert result["ois"] == pytest.approx(1)  # each image alone has a threshold that keeps only the box
    assert result["ods"] < 0.9  # no single threshold does for both
    assert 0 < result["ap"] <= 1


def test_the_best_f_is_found_between_thresholds():
    thresholds = np.array([0.2, 0.4])
    best = best_interpolated(thresholds, np.array([0.2, 1.0]), np.array([1.0, 0.2]))
    assert best["ods"] == pytest.approx(0.6, abs=1e-3)  # (0.6, 0.6) halfway, above both ends' F of 0.33
    assert best["ods_threshold"] == pytest.approx(0.3, abs=0.01)


def save_groundtruth(path, annotators: list[np.ndarray]) -> None:
    """BSDS500's layout: groundTruth{i}.Segmentation and .Boundaries, a 1 x annotators cell of structs."""
    from scipy.io import savemat

    cells = np.empty((1, len(annotators)), dtype=object)
    for k, a in enumerate(annotators):
        cells[0, k] = {"Segmentation": np.ones(a.shape, np.uint16), "Boundaries": a.astype(np.uint8)}
    savemat(path, {"groundTruth": cells})


def test_ground_truth_is_read_from_bsds_mat_files_every_annotator_apart(tmp_path, annotators):
    from scipy.io import savemat

    from sketchify.errors import SketchifyError

    save_groundtruth(tmp_path / "1.mat", annotators)
    loaded = load_groundtruth(tmp_path / "1.mat")
    assert len(loaded) == 2 and all(np.array_equal(a, b) for a, b in zip(loaded, annotators))
    savemat(tmp_path / "2.mat", {"something": np.zeros(3)})
    with pytest.raises(SketchifyError, match="2.mat: not a BSDS500 ground-truth file"):
        load_groundtruth(tmp_path / "2.mat")


def test_eval_adds_the_benchmark_beside_contour_f_when_given_the_ground_truth(tiny_model_dir, tmp_path):
    import json

    from conftest import cli, photo, sketch_of

    photos, maps, truth = tmp_path / "scenes", tmp_path / "boundaries", tmp_path / "gt"
    for d in (photos, maps, truth):
        d.mkdir()
    for i in range(3):
        img = photo(i, size=(120, 90))
        img.save(photos / f"s{i}.png")
        edges = np.asarray(sketch_of(img)) < 128  # the photo's own strong edges, as two annotators saw them
        Image.fromarray(np.where(edges, 255, 0).astype(np.uint8)).save(maps / f"s{i}.png")
        save_groundtruth(truth / f"s{i}.mat", [thin(edges), thin(edges) & (np.arange(120) < 60)])
    run = cli("eval", "--contours", photos, maps, "--groundtruth", truth, "--split", "all", "--weights",
              tiny_model_dir, "--json", tmp_path / "s.json")
    assert run.code == 0, run.text
    assert "ODS" in run.text and "OIS" in run.text
    scores = json.loads((tmp_path / "s.json").read_text())["contours"]
    for m in scores.values():
        assert all(0 <= m[k] <= 1 for k in ("ods", "ois", "ap")) and m["f"] >= 0  # beside the lenient F
    assert scores["gradient magnitude"]["ods"] > 0.5  # the truth is the photos' own edges

    (truth / "s1.mat").unlink()
    run = cli("eval", "--contours", photos, maps, "--groundtruth", truth, "--weights", tiny_model_dir)
    assert run.code == 2 and "no ground truth for 1 scenes (s1)" in run.text
    run = cli("eval", photos, "--groundtruth", truth, "--weights", tiny_model_dir)  # pairs only: no scenes
    assert run.code == 2 and "--groundtruth" in run.text
    # a cut-short file, or one of another size, is named before any scene is drawn
    save_groundtruth(truth / "s1.mat", [thin(edges)])
    (truth / "s0.mat").write_bytes((truth / "s0.mat").read_bytes()[:100])
    run = cli("eval", "--contours", photos, maps, "--groundtruth", truth, "--split", "all", "--weights",
              tiny_model_dir)
    assert run.code == 2 and "s0.mat: not a BSDS500 ground-truth file" in run.text, run.text
    save_groundtruth(truth / "s0.mat", [np.zeros((10, 10), bool)])
    run = cli("eval", "--contours", photos, maps, "--groundtruth", truth, "--split", "all", "--weights",
              tiny_model_dir)
    assert run.code == 2 and "s0.mat: its boundaries are (10, 10), the boundary map" in run.text, run.text
