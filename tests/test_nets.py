"""Networks: shapes, time conditioning, sizes, and one clear error for bad input."""

import pytest
import torch

from diffuse_edu.nets.embeddings import TimeEmbedding, sinusoidal_embedding
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.nets.unet import UNet


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_sinusoidal_embedding_values():
    t = torch.tensor([0.0, 0.5, 1.0])
    e = sinusoidal_embedding(t, 8, scale=1000.0)
    assert e.shape == (3, 8)
    # At t = 0 every cosine is 1 and every sine 0; the first frequency is 1, so entry 0 is cos(1000 t).
    assert torch.equal(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert e[1, 0].item() == pytest.approx(torch.cos(torch.tensor(500.0)).item(), abs=1e-5)
    assert torch.allclose(e[:, :4] ** 2 + e[:, 4:] ** 2, torch.ones(3, 4), atol=1e-6)
    assert TimeEmbedding(32)(t).shape == (3, 32)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(t, 7)


def test_time_mlp_shapes_and_time_conditioning():
    torch.manual_seed(0)
    net = TimeMLP(dim=2, hidden=64, depth=3, time_dim=32)
    x = torch.randn(5, 2)
    out = net(x, torch.full((5,), 0.1))
    assert out.shape == (5, 2)
    assert not torch.allclose(out, net(x, torch.full((5,), 0.9)))
    assert torch.equal(net(x, 0.3), net(x, torch.full((5,), 0.3)))  # a scalar time broadcasts
    assert TimeMLP(dim=3, out_dim=7, hidden=16, depth=1)(torch.randn(2, 3), torch.rand(2)).shape == (2, 7)
    assert n_params(TimeMLP()) < 1_000_000


@pytest.mark.parametrize("size, base", [(8, 32), (16, 16), (28, 16), (32, 16)])
def test_unet_shapes_and_time_conditioning(size, base):
    torch.manual_seed(0)
    net = UNet(size, base=base)
    x = torch.randn(2, 1, size, size)
    out = net(x, torch.tensor([0.2, 0.2]))
    assert out.shape == x.shape
    assert not torch.allclose(out, net(x, torch.tensor([0.8, 0.8])))


def test_unet_fast_size_attention_and_channels():
    assert n_params(UNet(8, base=32)) <= 500_000
    net = UNet(8, in_channels=3, base=16, attention=True)
    x = torch.randn(2, 3, 8, 8)
    assert net(x, torch.rand(2)).shape == (2, 3, 8, 8)
    # Each example gets its own time: changing example 1's time leaves example 0's output alone.
    a = net(x, torch.tensor([0.3, 0.1]))
    b = net(x, torch.tensor([0.3, 0.9]))
    assert torch.allclose(a[0], b[0], atol=1e-6) and not torch.allclose(a[1], b[1])


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda m, u: m(torch.randn(4, 3), torch.rand(4)), ValueError, r"shape \(B, 2\)"),
        (lambda m, u: m(torch.randint(0, 3, (4, 2)), torch.rand(4)), TypeError, "floating"),
        (lambda m, u: m(torch.randn(4, 2), torch.rand(3)), ValueError, "shape"),
        (lambda m, u: m(torch.randn(4, 2), torch.full((4,), 1.5)), ValueError, r"\[0, 1\]"),
        (lambda m, u: m(torch.full((4, 2), float("nan")), torch.rand(4)), ValueError, "NaN"),
        (lambda m, u: u(torch.randn(2, 1, 16, 16), torch.rand(2)), ValueError, r"\(B, 1, 8, 8\)"),
        (lambda m, u: u(torch.randn(2, 8, 8), torch.rand(2)), ValueError, "dimension"),
        (lambda m, u: u(torch.randn(2, 1, 8, 8), "t"), TypeError, "t must be"),
    ],
)
def test_bad_inputs_raise(call, exc, match):
    mlp, unet = TimeMLP(hidden=16, depth=1, time_dim=8), UNet(8, base=16)
    with pytest.raises(exc, match=match):
        call(mlp, unet)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden"):
        TimeMLP(hidden=0)
    with pytest.raises(ValueError, match="image_size"):
        UNet(0)
