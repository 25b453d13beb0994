"""Digits data, the Fréchet distance (closed forms), the digit judge (recipes.judges) and the memorisation check."""

import math

import numpy as np
import pytest
import torch

from diffuse_edu.data.digits import load_digits_images, to_pixels
from diffuse_edu.metrics import frechet as fr
from diffuse_edu.nets.judges import DigitClassifier
from diffuse_edu.recipes import judges


def test_digits_shapes_range_and_split():
    tr, te, al = (load_digits_images(s) for s in ("train", "test", "all"))
    assert al.images.shape == (1797, 1, 8, 8) and al.labels.shape == (1797,)
    assert len(tr.labels) + len(te.labels) == 1797 and len(te.labels) == 359
    assert tr.images.dtype == torch.float32 and tr.labels.dtype == torch.int64
    assert al.images.min() == -1.0 and al.images.max() == 1.0
    # to_pixels inverts the scaling exactly back to the integers 0..16.
    p = to_pixels(al.images)
    assert torch.equal(p, p.round()) and p.max() == 16
    # Deterministic, disjoint, and different for another seed.
    assert torch.equal(load_digits_images("test").images, te.images)
    flat = lambda x: {tuple(r) for r in x.flatten(1).tolist()}
    assert not flat(tr.images) & flat(te.images)  # the 1,797 images are all distinct, so this means disjoint
    assert not torch.equal(load_digits_images("test", seed=1).images, te.images)
    assert set(te.labels.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="split"):
        load_digits_images("val")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_images("train", test_fraction=1.0)


def test_frechet_from_stats_closed_form():
    # Commuting covariances: FD = ‖Δμ‖² + Σ_i (√a_i − √b_i)² for diagonal Σ₁ = diag(a), Σ₂ = diag(b).
    a, b = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    mu1, mu2 = torch.zeros(3), torch.tensor([1.0, 2.0, 0.0])
    expected = 5.0 + ((a.sqrt() - b.sqrt()) ** 2).sum().item()
    assert fr.frechet_from_stats(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-12)
    # A non-commuting pair: rotate Σ₂; 1-D check of W₂² = (μ₁−μ₂)² + (σ₁−σ₂)² too.
    assert fr.frechet_from_stats(
        torch.tensor([0.0]), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[1.0]])
    ) == pytest.approx(9.0 + 1.0)
    g = torch.Generator().manual_seed(0)
    m = torch.randn(5, 5, generator=g, dtype=torch.float64)
    c1 = m @ m.T + 0.1 * torch.eye(5, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    c2 = q @ c1 @ q.T
    # Reference via scipy's general sqrtm of Σ₁Σ₂.
    from scipy.linalg import sqrtm

    ref = np.trace(c1.numpy() + c2.numpy()) - 2 * np.trace(sqrtm(c1.numpy() @ c2.numpy())).real
    assert fr.frechet_from_stats(torch.zeros(5), c1, torch.zeros(5), c2) == pytest.approx(ref, rel=1e-8)
    with pytest.raises(ValueError, match="shapes"):
        fr.frechet_from_stats(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2))


def test_frechet_distance_self_zero_symmetric_and_grows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 4, generator=g)
    y = torch.randn(500, 4, generator=g) * 1.5 + 0.5
    assert fr.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert fr.frechet_distance(x, y) == pytest.approx(fr.frechet_distance(y, x), rel=1e-9)
    d = [fr.frechet_distance(x, x + s * torch.randn(500, 4, generator=g)) for s in (0.1, 0.5, 1.0)]
    assert d[0] < d[1] < d[2]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    # Trained once for this module in a temporary cache (a few seconds), then read back from the cache.
    cache = tmp_path_factory.mktemp("cache")
    model = judges.digit_judge(cache=cache, verbose=False)
    folder = cache / "judges" / "digits"
    assert [p.name for p in folder.iterdir()] and sorted(p.name for p in next(folder.iterdir()).iterdir()) == [
        "judge.json",
        "judge.safetensors",
    ]
    judges._LOADED.clear()
    reloaded = judges.digit_judge(cache=cache, verbose=False)  # from disk this time
    assert isinstance(reloaded, DigitClassifier) and reloaded is not model
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # training is seeded and single-threaded: a retrain gives the same weights
    again = judges.train_digit_judge(verbose=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    return reloaded


def test_classifier_accuracy_and_frechet_on_digits(classifier):
    te = load_digits_images("test")
    assert fr.classifier_accuracy(te.images, te.labels, classifier) >= 0.97
    f = fr.digit_features(te.images, classifier)
    assert f.shape == (359, judges.DIGIT_JUDGE_CONFIG["feat_dim"]) and f.dtype == torch.float32
    assert fr.frechet_digits(te.images, te.images, classifier) == pytest.approx(0.0, abs=1e-6)
    assert judges.frechet_to_digits(te.images, "test", classifier) == pytest.approx(0.0, abs=1e-6)
    assert torch.equal(judges.digits_split("test"), te.images)
    floor = judges.digits_frechet_floor(359, "test", judge=classifier)
    g = torch.Generator().manual_seed(0)
    noisy = [
        judges.frechet_to_digits(te.images + s * torch.randn(te.images.shape, generator=g), "train", classifier)
        for s in (0.0, 0.3, 1.0)
    ]
    assert noisy[0] < noisy[1] < noisy[2]
    assert floor < noisy[2]
    assert math.isfinite(floor) and floor > 0
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        fr.digit_features(torch.randn(3, 1, 16, 16), classifier)
    with pytest.raises(ValueError, match="n must lie"):
        judges.digits_frechet_floor(1, judge=classifier)


def test_nearest_neighbour_check_flags_copies():
    tr, te = load_digits_images("train"), load_digits_images("test")
    copies = fr.nearest_neighbour_check(tr.images[:40], tr.images, te.images)
    assert copies.copy_fraction == 1.0 and copies.median_ratio == 0.0
    assert torch.all(copies.sample_to_train == 0)
    # Real unseen images look exactly like the reference: ratio 1, about 1% "copies" by construction.
    fresh = fr.nearest_neighbour_check(te.images, tr.images, te.images)
    assert fresh.median_ratio == pytest.approx(1.0) and fresh.copy_fraction <= 0.02
    noise = fr.nearest_neighbour_check(torch.rand(50, 1, 8, 8) * 2 - 1, tr.images, te.images)
    assert noise.median_ratio > 1.5 and noise.copy_fraction == 0.0


def test_make_grid_layout_and_image_grid():
    import matplotlib

    matplotlib.use("Agg")
    from diffuse_edu.viz import image_grid, make_grid

    x = torch.arange(5.0)[:, None, None, None].expand(5, 1, 2, 2)  # image i is filled with the value i
    g = make_grid(x, nrow=3, padding=1, pad_value=-1.0)
    assert g.shape == (1, 2 * 3 - 1, 3 * 3 - 1)
    assert g[0, 0, 0] == 0 and g[0, 0, 3] == 1 and g[0, 3, 3] == 4 and g[0, 0, 2] == -1
    assert g[0, 3, 6] == -1  # the empty sixth slot stays padding
    ax = image_grid(load_digits_images("test").images[:16], 4)
    assert ax.images[0].get_array().shape == (35, 35)
