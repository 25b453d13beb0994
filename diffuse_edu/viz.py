"""Small matplotlib helpers shared by the notebooks (matplotlib is imported only when a helper is called).

Each helper draws on an ``ax`` you pass (or makes one) and returns it, so cells stay one line long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["image_grid", "make_grid", "scatter2d", "score_field", "plot_schedules", "plot_losses"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _new_ax(ax, figsize=(4, 4)):
    if ax is None:
        _, ax = _plt().subplots(figsize=figsize, dpi=72)
    return ax


def make_grid(x: Tensor, nrow: int = 8, padding: int = 1, pad_value: float = -1.0) -> Tensor:
    """Tile images ``x`` shape (N, C, H, W) into one image shape (C, rows·(H+p)−p, nrow·(W+p)−p)."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(
            f"x must be a tensor of images with shape (N, C, H, W); got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}."
        )
    n, c, h, w = x.shape
    nrow = max(1, min(nrow, n))
    rows = -(-n // nrow)
    grid = torch.full((c, rows * (h + padding) - padding, nrow * (w + padding) - padding), float(pad_value))
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[:, r * (h + padding) : r * (h + padding) + h, col * (w + padding) : col * (w + padding) + w] = x[i].cpu()
    return grid


def image_grid(
    x: Tensor,
    nrow: int = 8,
    *,
    ax=None,
    vrange: tuple[float, float] = (-1.0, 1.0),
    cmap: str = "gray",
    title: str | None = None,
    padding: int = 1,
):
    """Show images ``x`` shape (N, C, H, W) (values in ``vrange``) as a grid with ``nrow`` images per row."""
    grid = make_grid(x.detach().float(), nrow, padding, pad_value=vrange[0])
    ax = _new_ax(ax)
    img = grid[0] if grid.shape[0] == 1 else grid.permute(1, 2, 0).sub(vrange[0]).div(vrange[1] - vrange[0]).clamp(0, 1)
    ax.imshow(
        img.numpy(), cmap=cmap if grid.shape[0] == 1 else None, vmin=vrange[0], vmax=vrange[1], interpolation="nearest"
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def scatter2d(
    ax, x: Tensor, *, s: float = 2.0, alpha: float = 0.5, lim: float | None = None, title: str | None = None, **kwargs
):
    """Scatter 2D points ``x`` shape (N, 2); ``lim`` sets a square window [−lim, lim]²."""
    ax = _new_ax(ax)
    x = torch.as_tensor(x).detach().cpu()
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2); got {tuple(x.shape)}.")
    ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=s, alpha=alpha, **kwargs)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def score_field(
    ax,
    fn: Callable[[Tensor], Tensor],
    lim: float = 3.0,
    n: int = 20,
    *,
    title: str | None = None,
    normalize: bool = False,
    **kwargs,
):
    """Quiver plot of a vector field ``fn(points (n², 2)) -> vectors (n², 2)`` on an n × n grid over [−lim, lim]².

    ``normalize`` draws unit arrows (direction only), useful where the score's size varies over decades.
    """
    ax = _new_ax(ax)
    g = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([xx.flatten(), yy.flatten()], dim=1)  # (n², 2)
    with torch.no_grad():
        v = torch.as_tensor(fn(pts)).detach().cpu().float()
    if v.shape != pts.shape:
        raise ValueError(f"fn must map points (N, 2) to vectors (N, 2); got {tuple(v.shape)}.")
    if normalize:
        v = v / v.norm(dim=1, keepdim=True).clamp(min=1e-12)
    ax.quiver(pts[:, 0].numpy(), pts[:, 1].numpy(), v[:, 0].numpy(), v[:, 1].numpy(), **kwargs)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def plot_schedules(
    schedules: Mapping | Sequence, quantities: Sequence[str] = ("alpha", "log_snr"), n: int = 201, *, axes=None
):
    """Plot schedule quantities against t ∈ [0, 1], one panel per quantity.

    Args:
        schedules: ``{label: Schedule}`` or a list of schedules (labelled by ``repr``).
        quantities: any of ``"alpha"``, ``"sigma"``, ``"log_snr"``, ``"beta"``, ``"dalpha"``.
        n: grid points (the endpoints are nudged inward where log-SNR/β are infinite).
    Returns:
        The array of axes.
    """
    plt = _plt()
    if not isinstance(schedules, Mapping):
        schedules = {repr(s): s for s in schedules}
    if axes is None:
        _, axes = plt.subplots(1, len(quantities), figsize=(3.6 * len(quantities), 3), dpi=72, squeeze=False)
        axes = axes[0]
    t = torch.linspace(1e-3, 1 - 1e-3, n, dtype=torch.float64)
    for ax, q in zip(axes, quantities):
        for label, sched in schedules.items():
            ax.plot(t.numpy(), getattr(sched, q)(t).numpy(), label=label)
        ax.set_xlabel("t")
        ax.set_title(q)
    axes[0].legend(fontsize=7)
    return axes


def plot_losses(losses: Sequence[float], *, ax=None, smooth: int = 50, log: bool = True, label: str | None = None):
    """Training loss per step (faint) with a running mean over ``smooth`` steps."""
    ax = _new_ax(ax, figsize=(5, 3))
    y = torch.as_tensor(list(losses), dtype=torch.float64)
    ax.plot(y.numpy(), alpha=0.25, lw=0.8)
    if len(y) >= smooth > 1:
        kernel = torch.ones(1, 1, smooth, dtype=torch.float64) / smooth
        avg = torch.nn.functional.conv1d(y[None, None], kernel)[0, 0]
        ax.plot(range(smooth - 1, len(y)), avg.numpy(), lw=1.5, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return ax
