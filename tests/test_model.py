"""The model maths: KL, reparameterisation, shapes, sampling, tiling, and the saved model folder."""

import json

import numpy as np
import pytest
import torch
from conftest import lively, photo, tiny_config, tiny_training
from PIL import Image

from sketchify import SketchifyError
from sketchify.config import ModelConfig, TrainConfig
from sketchify.efficientnet import EfficientNetLite0, fold_batch_norm
from sketchify.inference import Sketcher
from sketchify.losses import diversity_hinge, ink_weight, kl_divergence
from sketchify.model import SketchModel, reparameterize


def pixels(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255)


def test_kl_matches_closed_form_and_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).mean()
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected.item(), rel=1e-5)
    assert kl_divergence(torch.zeros(4), torch.zeros(4)).item() == 0.0  # q equal to the prior


def test_reparameterisation_gradients_flow_through_mu_and_sigma():
    mu = torch.zeros(1000, requires_grad=True)
    logvar = torch.full((1000,), 2 * torch.log(torch.tensor(3.0)).item(), requires_grad=True)
    eps = torch.randn(1000)
    z = reparameterize(mu, logvar, eps=eps)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(1000))
    assert torch.allclose(logvar.grad, 0.5 * 3.0 * eps, atol=1e-5)  # dz/dlogvar = sigma * eps / 2
    assert z.std().item() == pytest.approx(3.0, rel=0.1)


def test_temperature_zero_is_the_mean():
    mu, logvar = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.equal(reparameterize(mu, logvar, temperature=0.0), mu)


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (64, 12), (101, 99)])
def test_sketch_has_photo_size_for_odd_sizes(size):
    sketcher = Sketcher(SketchModel(tiny_config()))
    out = sketcher.sketch(photo(0, size))
    assert out.size == size and out.mode == "L"


def test_every_latent_scale_drives_the_generator_and_nothing_else_does():
    model = lively(SketchModel(tiny_config())).eval()
    style = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        stats = model.encode(torch.rand(1, 3, 32, 32))
        assert [mu.shape[-1] for mu, _ in stats] == [16, 8, 4, 2]  # 1/2, 1/4, 1/8, 1/16 of the photo
        zs = [torch.randn_like(mu) for mu, _ in stats]
        base = model.decode(zs, style)
        assert base.shape == (1, 1, 32, 32)
        for i in range(len(zs)):  # each scale's latent changes the drawing
            moved = [z + torch.randn_like(z) if j == i else z for j, z in enumerate(zs)]
            assert (model.decode(moved, style) - base).abs().mean() > 1e-4
        # the photo reaches the generator only through the latents: fixed latents, any photo, one drawing
        assert torch.equal(model.decode(zs, style), base)
    assert set(dict(model.generator.named_children())) == {"stem", "blocks", "up", "to_sketch"}


def test_folding_batch_norm_keeps_the_efficientnet_function():
    torch.manual_seed(0)
    net = EfficientNetLite0(blocks=5, head=False)
    for m in net.modules():  # batch norms with statistics of their own, as a trained network has
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
    folded = EfficientNetLite0(blocks=5, head=False, folded=True)
    folded.load_state_dict(fold_batch_norm(net.state_dict()), strict=True)
    x = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        a, b = net.eval().features(x, (0, 2, 4)), folded.eval().features(x, (0, 2, 4))
    assert [t.shape[-1] for t in a] == [32, 16, 8]
    assert all(torch.allclose(p, q, atol=1e-4) for p, q in zip(a, b))


def test_different_eps_differ_and_zero_temperature_is_deterministic():
    sketcher = Sketcher(lively(SketchModel(tiny_config())))
    img = photo(1, (40, 32))
    samples = sketcher.samples(img, 3, seed=0, temperature=1.0)
    tensors = [pixels(s) for s in samples]
    assert all((a - b).abs().mean() > 0.01 for a, b in [(tensors[0], tensors[1]), (tensors[1], tensors[2])])
    again = sketcher.samples(img, 3, seed=0, temperature=1.0)
    assert all(torch.equal(pixels(a), pixels(b)) for a, b in zip(samples, again))  # a seed repeats
    means = [sketcher.sketch(img, temperature=0.0) for _ in range(2)]
    assert torch.equal(pixels(means[0]), pixels(means[1]))


def test_training_samples_as_sample_does():
    # one definition: the training step's two samples, the model's forward and Sketcher all draw every latent
    # scale at the model's sample_temperature; at 0 each of them gives the mean sketch
    from sketchify.step import GeneratorForward

    img = photo(1, (32, 32))
    for t in (0.0, 1.0):
        model = lively(SketchModel(tiny_config(sample_temperature=t))).eval()
        sketcher = Sketcher(model)
        x = sketcher.prepare(img)[None]
        style = torch.tensor([model.config.style_index(None)])
        with torch.no_grad():
            fakes, _, _ = GeneratorForward(model)(x, style)
            mean = model(x, style, temperature=0.0)
            noise = sketcher._noise(x.shape, seed=5)
            eps = [e[None] for e in noise]
            assert torch.allclose(model(x, style, eps=eps), sketcher._draw(x, None, t, [noise]), atol=1e-4)
        apart = (fakes[0] - fakes[1]).abs().mean().item()
        assert (apart == 0 and torch.allclose(fakes[:1], mean, atol=1e-5)) if t == 0 else apart > 0.005, (t, apart)
        assert len(sketcher._noise(x.shape, seed=5)) == 4 and all(e.abs().sum() > 0 for e in eps)  # every scale


def test_the_zoom_windows_are_drawn_as_convert_draws_them():
    # convert draws large photos at t = 0, so the zoom term's windows are mean sketches even where training
    # samples at t = 1: the same windows give the same drawing twice, and that drawing is model(..., t = 0)
    from sketchify.step import GeneratorForward

    model = lively(SketchModel(tiny_config(sample_temperature=1.0))).eval()
    sketcher = Sketcher(model)
    x = sketcher.prepare(photo(1, (32, 32)))[None]
    style = torch.tensor([model.config.style_index(None)])
    with torch.no_grad():
        fakes, _, first = GeneratorForward(model)(x, style, x)
        _, _, again = GeneratorForward(model)(x, style, x)
        mean = model(x, style, temperature=0.0)
    assert (fakes[0] - fakes[1]).abs().mean() > 0.005  # the samples beside them do vary
    assert torch.equal(first, again) and torch.allclose(first, mean, atol=1e-5)


def test_styles_change_the_sketch_and_unknown_style_is_an_error():
    sketcher = Sketcher(lively(SketchModel(tiny_config())))
    img = photo(2, (32, 32))
    a, b = (pixels(sketcher.sketch(img, style=s)) for s in ("light-pencil", "bold-ink"))
    assert (a - b).abs().mean() > 0.1
    with pytest.raises(SketchifyError, match="unknown style 'crayon'"):
        sketcher.sketch(img, style="crayon")


def test_tiled_inference_matches_whole_image():
    model = lively(SketchModel(tiny_config()))
    img = photo(3, (150, 130))
    whole = Sketcher(model, max_side=0, tile=1024).sketch(img, seed=1, temperature=1.0)
    tiled = Sketcher(model, max_side=0, tile=32).sketch(img, seed=1, temperature=1.0)
    assert torch.equal(pixels(whole), pixels(tiled))  # no seams


def test_large_photo_is_drawn_at_working_size_and_scaled_back():
    sketcher = Sketcher(SketchModel(tiny_config()), max_side=64)
    out = sketcher.sketch(photo(4, (300, 200)))
    assert out.size == (300, 200)


def test_diversity_hinge_is_zero_above_margin_and_positive_below():
    a = torch.zeros(2, 1, 4, 4)
    assert diversity_hinge(a, a + 0.5, margin=0.1).item() == 0.0
    assert diversity_hinge(a, a + 0.05, margin=0.1).item() == pytest.approx(0.05)


def test_diversity_is_measured_where_the_reference_draws_not_on_bare_paper():
    reference = torch.ones(1, 1, 16, 16)
    reference[..., 8, :] = 0.0  # one dark stroke across white paper
    weight = ink_weight(reference)
    assert weight[..., 8, :].min() == 1 and weight[..., 0, :].max() == 0
    a = torch.zeros(1, 1, 16, 16)
    paper_only = a.clone()
    paper_only[..., :3, :] = 1.0  # samples differ on bare paper only
    on_stroke = a.clone()
    on_stroke[..., 8, :] = 0.2  # samples differ on the stroke
    assert diversity_hinge(a, paper_only, margin=0.1, weight=weight).item() == pytest.approx(0.1)
    assert diversity_hinge(a, on_stroke, margin=0.1, weight=weight).item() < 0.1


def test_diversity_knee_prefers_a_few_visible_differences_to_a_faint_one_everywhere():
    a = torch.zeros(1, 1, 10, 10)
    faint = a + 0.05  # every pixel a little different
    visible = a.clone()
    visible[..., :2, :] = 0.25  # a fifth of the pixels clearly different: the same mean difference
    assert (faint - a).abs().mean() == pytest.approx((visible - a).abs().mean())
    assert diversity_hinge(a, faint, margin=0.2).item() == pytest.approx(diversity_hinge(a, visible, margin=0.2).item())
    hinge = lambda b: diversity_hinge(a, b, margin=0.2, knee=0.15).item()
    assert hinge(visible) < hinge(faint)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SketchModel(tiny_config(widths=(4, 4, 8, 8, 12)))
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = SketchModel.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    x, s = torch.rand(1, 3, 32, 32), torch.ones(1, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, s, 0.0), loaded(x, s, 0.0))


def test_config_round_trip_and_validation(tmp_path):
    cfg = tiny_config(styles=("a", "b"), default_style="b")
    cfg.save(tmp_path / "c.json")
    assert ModelConfig.load(tmp_path / "c.json") == cfg
    (tmp_path / "bad.json").write_text(json.dumps({"widths": "wide"}))
    with pytest.raises(SketchifyError, match="widths"):
        ModelConfig.load(tmp_path / "bad.json")
    (tmp_path / "unknown.json").write_text(json.dumps({"depth": 3}))
    with pytest.raises(SketchifyError, match="unknown keys: depth"):
        ModelConfig.load(tmp_path / "unknown.json")
    (tmp_path / "training.json").write_text(json.dumps({"lr": 3e-4, "loss_weights": {"adv": 0.2}}))
    train = TrainConfig.load(tmp_path / "training.json")
    assert train.lr == 3e-4 and train.loss_weights["adv"] == 0.2
    assert train.loss_weights["tone"] == TrainConfig().loss_weights["tone"]  # the other weights keep their defaults


def test_per_style_diversity_margins_survive_a_round_trip_and_name_real_styles(tmp_path):
    cfg = tiny_training(diversity_margin=0.3, style_diversity_margin={"a": 0.1})
    assert cfg.diversity_margins(("a", "b")) == [0.1, 0.3]
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json").diversity_margins(("a", "b")) == [0.1, 0.3]
    with pytest.raises(SketchifyError, match="style_diversity_margin"):
        cfg.diversity_margins(("b", "c"))


def test_diversity_hinge_takes_one_margin_per_sketch():
    a = torch.zeros(2, 1, 4, 4)
    b = a + 0.1  # both pairs differ by 0.1
    assert diversity_hinge(a, b, margin=torch.tensor([0.05, 0.3])).item() == pytest.approx(0.2 / 2)


class TestBadWeights:
    def test_missing_config(self, tiny_model_dir):
        (tiny_model_dir / "config.json").unlink()
        with pytest.raises(SketchifyError, match="config.json: missing"):
            SketchModel.from_pretrained(tiny_model_dir)

    def test_malformed_config(self, tiny_model_dir):
        (tiny_model_dir / "config.json").write_text("{not json")
        with pytest.raises(SketchifyError, match="not valid JSON"):
            SketchModel.from_pretrained(tiny_model_dir)

    def test_wrong_shape(self, tiny_model_dir):
        cfg = json.loads((tiny_model_dir / "config.json").read_text())
        cfg["widths"] = [8, 8, 8, 8, 8]
        (tiny_model_dir / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(SketchifyError, match="has shape"):
            SketchModel.from_pretrained(tiny_model_dir)

    def test_truncated_safetensors(self, tiny_model_dir):
        path = tiny_model_dir / "model.safetensors"
        path.write_bytes(path.read_bytes()[:-100])
        with pytest.raises(SketchifyError, match="not a readable safetensors file"):
            SketchModel.from_pretrained(tiny_model_dir)

    def test_pickle_is_never_unpickled(self, tiny_model_dir, tmp_path):
        import pickle

        marker = tmp_path / "pwned"

        class Evil:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        (tiny_model_dir / "model.safetensors").write_bytes(pickle.dumps(Evil()))
        with pytest.raises(SketchifyError, match="not a readable safetensors file"):
            SketchModel.from_pretrained(tiny_model_dir)
        assert not marker.exists()

    def test_missing_tensor_is_strict(self, tiny_model_dir):
        from safetensors.torch import load_file, save_file

        state = load_file(str(tiny_model_dir / "model.safetensors"))
        state.pop(next(iter(state)))
        save_file(state, str(tiny_model_dir / "model.safetensors"))
        with pytest.raises(SketchifyError, match="missing 1 tensors"):
            SketchModel.from_pretrained(tiny_model_dir)

    def test_not_a_folder(self, tmp_path):
        with pytest.raises(SketchifyError, match="no such model folder"):
            SketchModel.from_pretrained(tmp_path / "nothing")
        (tmp_path / "empty").mkdir()
        with pytest.raises(SketchifyError, match="not a model folder"):
            SketchModel.from_pretrained(tmp_path / "empty")

    def test_local_folder_never_touches_the_network(self, tiny_model_dir, monkeypatch):
        import huggingface_hub

        def boom(*a, **k):
            raise AssertionError("network used for a local folder")

        monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
        SketchModel.from_pretrained(tiny_model_dir)


def test_hub_repo_id_goes_through_huggingface_hub(tiny_model_dir, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, allow_patterns=None):
        calls.append((repo_id, tuple(allow_patterns)))
        return str(tiny_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    model = SketchModel.from_pretrained("someone/sketch-model")
    assert calls == [("someone/sketch-model", ("config.json", "model.safetensors", "README.md"))]
    assert model.config.widths == (4, 4, 4, 4, 4)

    def offline(repo_id, allow_patterns=None):
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(SketchifyError, match="could not be fetched from the Hub"):
        SketchModel.from_pretrained("someone/other")


@pytest.mark.parametrize("bad", [{"widths": [4, 4, 4, 4, 10**9]}, {"latent_channels": [1, 1, 0, 1]},
                                 {"deep_blocks": -1}, {"draw_size": 3}, {"widths": [4, 4]},
                                 {"sample_temperature": -1.0}])
def test_config_numbers_are_bounded_before_anything_is_built(tmp_path, bad):
    (tmp_path / "c.json").write_text(json.dumps({**tiny_config().to_dict(), **bad}))
    with pytest.raises(SketchifyError, match=next(iter(bad))):
        ModelConfig.load(tmp_path / "c.json")
