"""Small matplotlib helpers shared by the notebooks (matplotlib is imported only when a helper is called).

Each helper draws on an ``ax`` you pass (or makes one) and returns it, so cells stay one line long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from ._checks import check_finite, check_number, check_positive_int

__all__ = [
    "image_grid",
    "make_grid",
    "scatter2d",
    "scatter_row",
    "square",
    "label_map",
    "label_boundaries",
    "score_field",
    "plot_schedules",
    "plot_losses",
    "plot_vs_nfe",
    "captioned_images",
    "plot_modality_losses",
    "draw_joint_transformer",
]


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
    if x.is_complex():
        raise TypeError(f"x must hold real pixel values; got dtype {x.dtype}.")
    if x.shape[0] < 1:
        raise ValueError("x holds no images; expected at least one image to tile.")
    check_finite(x, "x")  # NaN pixels would show as blank tiles: a sample gone wrong must not look like an image
    check_positive_int(nrow, "nrow")  # nrow=0 used to give one silent column
    check_positive_int(padding, "padding", minimum=0)
    pad_value = check_number(pad_value, "pad_value")
    n, c, h, w = x.shape
    nrow = min(nrow, n)
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
    if not (isinstance(vrange, (tuple, list)) and len(vrange) == 2):
        raise ValueError(f"vrange must be two numbers (low, high); got {vrange!r}.")
    lo, hi = check_number(vrange[0], "vrange[0]"), check_number(vrange[1], "vrange[1]")
    if not lo < hi:
        raise ValueError(f"vrange must be (low, high) with low < high; got {vrange!r}.")
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a tensor of images with shape (N, C, H, W); got {type(x).__name__}.")
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
    if lim is not None:
        check_number(lim, "lim", 0.0, strict_low=True)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"x must be points of shape (N, 2) (a tensor or an array); got {type(x).__name__}.")
    x = torch.as_tensor(x).detach().cpu()
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2); got {tuple(x.shape)}.")
    if x.is_complex():
        raise TypeError(f"x must hold real coordinates; got dtype {x.dtype}.")
    check_finite(x, "x")  # matplotlib drops NaN points silently
    ax = _new_ax(ax)
    ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=s, alpha=alpha, **kwargs)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def scatter_row(panels: Mapping[str, Tensor], *, lim: float | None = None, s: float = 1.0, size: float = 2.6, **kwargs):
    """One row of 2D scatter plots, one per ``{title: points (N, 2)}``; returns the figure's axes."""
    plt = _plt()
    _, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size + 0.2), dpi=72, squeeze=False)
    for ax, (title, x) in zip(axes[0], panels.items(), strict=True):
        scatter2d(ax, x, lim=lim, s=s, title=title, **kwargs)
    return axes[0]


def square(ax, lim: float | tuple[float, float, float, float]):
    """Equal aspect and the window [−lim, lim]² (or ``(x0, x1, y0, y1)``)."""
    x0, x1, y0, y1 = (-lim, lim, -lim, lim) if isinstance(lim, (int, float)) else lim
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return ax


def label_map(ax, labels: Tensor, extent: tuple[float, float, float, float], colors, *, alpha: float = 0.5):
    """Show a grid of class labels ``labels`` shape (R, R) (row = y, column = x) as coloured regions over ``extent``.

    ``colors``: one RGBA row per class, e.g. ``plt.cm.tab10(range(K))``.
    """
    plt = _plt()
    cmap = plt.matplotlib.colors.ListedColormap(colors)
    k = len(colors)
    ax.imshow(
        torch.as_tensor(labels).cpu().numpy(), extent=extent, origin="lower", cmap=cmap, vmin=-0.5, vmax=k - 0.5,
        alpha=alpha, interpolation="nearest",
    )  # fmt: skip
    return square(ax, extent)


def label_boundaries(ax, gx: Tensor, gy: Tensor, labels: Tensor, **kwargs):
    """Draw the boundaries between the regions of a label grid (``gx``, ``gy``, ``labels`` shape (R, R)) as lines."""
    k = int(torch.as_tensor(labels).max()) + 1
    kwargs = {"colors": "k", "linewidths": 0.6, **kwargs}
    ax.contour(
        gx.numpy(), gy.numpy(), torch.as_tensor(labels).cpu().numpy(), levels=torch.arange(k + 1) - 0.5, **kwargs
    )
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
    for ax, q in zip(axes, quantities, strict=False):
        for label, sched in schedules.items():
            ax.plot(t.numpy(), getattr(sched, q)(t).numpy(), label=label)
        ax.set_xlabel("t")
        ax.set_title(q)
    axes[0].legend(fontsize=7)
    return axes


def plot_losses(losses: Sequence[float], *, ax=None, smooth: int = 50, log: bool = True, label: str | None = None):
    """Training loss per step (faint) with a running mean over ``smooth`` steps, in one colour (call it once per run
    on a shared ``ax`` to compare runs)."""
    check_positive_int(smooth, "smooth")
    if isinstance(losses, (str, bytes)) or not isinstance(losses, Iterable):
        raise TypeError(f"losses must be a sequence of numbers (one per step); got {type(losses).__name__}.")
    try:
        y = torch.as_tensor(list(losses), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"losses must be a sequence of numbers (one per step): {err}") from None
    if y.ndim != 1:
        raise ValueError(f"losses must be one number per step; got shape {tuple(y.shape)}.")
    ax = _new_ax(ax, figsize=(5, 3))
    (raw,) = ax.plot(y.numpy(), alpha=0.25, lw=0.8)
    if len(y) >= smooth > 1:
        kernel = torch.ones(1, 1, smooth, dtype=torch.float64) / smooth
        avg = torch.nn.functional.conv1d(y[None, None], kernel)[0, 0]
        ax.plot(range(smooth - 1, len(y)), avg.numpy(), lw=1.5, color=raw.get_color(), label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return ax


def plot_vs_nfe(
    rows: Sequence[Mapping],
    key: str,
    *,
    ax=None,
    models: Sequence[str] = ("learned", "exact"),
    floor=None,
    group: str = "sampler",
):
    """Plot ``row[f"{key} {model}"]`` against ``row["NFE"]``, one colour per ``row[group]``, one line style per model.

    ``rows``: e.g. :attr:`diffuse_edu.recipes.continuous.QualityVsNFE.rows`. ``floor``: something with ``mean`` and
    ``std`` (a :class:`~diffuse_edu.metrics.distances.NoiseFloor`), drawn as a grey band. Log-scaled NFE axis.
    """
    ax = _new_ax(ax, figsize=(6, 3.8))
    groups = list(dict.fromkeys(r[group] for r in rows))
    styles = ("o-", "x--", "s:", "d-.")
    for i, g in enumerate(groups):
        sub = [r for r in rows if r[group] == g]
        for j, m in enumerate(models):
            y = [r[f"{key} {m}"] for r in sub]
            ax.plot([r["NFE"] for r in sub], y, styles[j % 4], color=f"C{i}", alpha=1.0 if j == 0 else 0.7,
                    label=f"{g} ({m})")  # fmt: skip
    if floor is not None:
        ax.axhspan(floor.mean - floor.std, floor.mean + floor.std, color="grey", alpha=0.3, label="noise floor ± 1 sd")
    ax.set_xscale("log")
    ax.set_xlabel("network calls (NFE)")
    ax.set_title(f"{key} (lower is better)")
    return ax


def captioned_images(
    images: Tensor,
    captions: Sequence[str],
    *,
    ncol: int = 6,
    ok: Sequence[bool] | None = None,
    size: float = 1.6,
    fontsize: float = 7,
    wrap: int = 22,
):
    """Images (N, 3, S, S) in [−1, 1], each with its caption underneath (wrapped at ``wrap`` characters).

    ``ok``: per image, whether it is right (its caption in green) or wrong (in red); None: all black.
    Returns the figure.
    """
    import textwrap

    plt = _plt()
    n = len(images)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(size * ncol, (size + 0.35) * nrow), dpi=72, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        img = images[i].detach().float().cpu().clamp(-1, 1).add(1).div(2).permute(1, 2, 0)
        ax.imshow(img.numpy(), interpolation="nearest")
        color = "black" if ok is None else ("green" if ok[i] else "red")
        ax.set_title("\n".join(textwrap.wrap(captions[i] or "∅", wrap)), fontsize=fontsize, color=color, y=-0.02,
                     va="top")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_modality_losses(terms: Mapping[str, Sequence[float]], *, smooth: int = 50, axes=None, title: str = ""):
    """One panel per modality: its training loss per step (faint) and a running mean over ``smooth`` steps.

    ``terms``: modality name → losses, e.g. :attr:`diffuse_edu.recipes.text_image.TextImageModel.terms`. Returns
    the axes.
    """
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 2.8), dpi=72, squeeze=False)
        axes = axes[0]
    for ax, (name, losses) in zip(axes, terms.items(), strict=True):
        plot_losses(losses, ax=ax, smooth=smooth, label=title or None)
        ax.set_title(f"{name} loss")
    return axes


def draw_joint_transformer(
    n_patches: int = 16, text_len: int = 25, depth: int = 4, *, two_stream: bool = False, ax=None
):
    """A diagram of the joint pixel + character transformer: patches and characters in one sequence, each token
    modulated by its own modality's time embedding, one head per modality; ``two_stream``: each modality its own
    attention and MLP weights (else shared)."""
    ax = _new_ax(ax, figsize=(9, 3.6))
    plt = _plt()
    box = dict(boxstyle="round,pad=0.3", lw=1)

    def note(x, y, text, color, **kw):
        ax.text(x, y, text, ha="center", va="center", fontsize=8, bbox=dict(box, fc=color, ec="0.3"), **kw)

    # one row of tokens: image patches (blue) then characters (orange)
    n_img, n_txt = min(n_patches, 8), min(text_len, 10)
    xs = [i * 0.55 for i in range(n_img + n_txt)]
    for i, x in enumerate(xs):
        img = i < n_img
        ax.add_patch(plt.Rectangle((x, 0.9), 0.45, 0.45, fc="#9ecae1" if img else "#fdae6b", ec="0.3"))
        ax.add_patch(plt.Rectangle((x, 3.1), 0.45, 0.45, fc="#9ecae1" if img else "#fdae6b", ec="0.3"))
    mid_img, mid_txt = xs[n_img // 2], xs[n_img + n_txt // 2]
    note(mid_img, 0.2, f"noisy image: {n_patches} patches", "#deebf7")
    note(mid_txt, 0.2, f"masked caption: {text_len} characters", "#fee6ce")
    note((xs[0] + xs[-1]) / 2 + 0.2, 2.2, f"{depth} joint blocks: self-attention over all {n_patches + text_len} "
         f"tokens + MLP ({'one set of weights per modality' if two_stream else 'shared weights'})",
         "#f0f0f0")  # fmt: skip
    note(mid_img, 4.2, "head: ε (or v) per patch", "#deebf7")
    note(mid_txt, 4.2, "head: logits over the vocabulary", "#fee6ce")
    note(xs[-1] + 2.0, 2.9, "t_image → MLP → adaLN\n(shift, scale, gate)\nof image tokens", "#deebf7")
    note(xs[-1] + 2.0, 1.5, "t_caption → MLP → adaLN\nof character tokens", "#fee6ce")
    ax.annotate("", xy=((xs[0] + xs[-1]) / 2, 1.9), xytext=((xs[0] + xs[-1]) / 2, 1.4),
                arrowprops=dict(arrowstyle="->"))  # fmt: skip
    ax.annotate("", xy=((xs[0] + xs[-1]) / 2, 3.05), xytext=((xs[0] + xs[-1]) / 2, 2.5),
                arrowprops=dict(arrowstyle="->"))  # fmt: skip
    ax.set_xlim(-0.5, xs[-1] + 3.3)
    ax.set_ylim(-0.3, 4.6)
    ax.set_axis_off()
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Tables (notebook 05): marginals, pairwise associations, quality against sampler steps
# ----------------------------------------------------------------------------------------------------------------

__all__ += ["table_marginals", "association_heatmaps", "plot_steps_curve"]


def table_marginals(
    frames: Mapping[str, object],
    kinds: Mapping[str, str],
    *,
    columns: Sequence[str] | None = None,
    ncols: int = 5,
    bins: int = 30,
    top: int = 6,
    size: float = 2.4,
):
    """One panel per column comparing DataFrames (e.g. ``{"real": train, "ours": synthetic}``): step histograms
    (densities) for numeric columns, side-by-side bars of the ``top`` most common categories (shares) for the others.

    ``kinds``: column → ``"numeric"``/``"integer"``/``"categorical"``. Numeric columns with a spike (one value above
    half of the rows, e.g. ``capital_gain``) get a log-scaled count axis so the tail stays visible. Returns the axes.
    """
    import numpy as np

    plt = _plt()
    names = list(frames)
    first = frames[names[0]]
    columns = list(columns or first.columns)
    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.8 * nrows), dpi=72, squeeze=False)
    for ax, col in zip(axes.flat, columns, strict=False):
        if kinds.get(col, "categorical") == "categorical":
            shares = {n: frames[n][col].astype(object).fillna("NaN").astype(str).value_counts(normalize=True)
                      for n in names}  # fmt: skip
            cats = list(shares[names[0]].index[:top])
            width = 0.8 / len(names)
            for i, n in enumerate(names):
                ax.bar(np.arange(len(cats)) + i * width, [shares[n].get(c, 0.0) for c in cats], width, label=n)
            ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2)
            ax.set_xticklabels([c[:8] for c in cats], rotation=60, fontsize=6)
        else:
            ref = first[col].dropna().to_numpy(dtype=float)
            edges = np.histogram_bin_edges(ref, bins=bins)
            spike = np.unique(ref, return_counts=True)[1].max() > 0.5 * len(ref)
            for n in names:
                x = frames[n][col].dropna().to_numpy(dtype=float)
                ax.hist(x, bins=edges, histtype="step", density=not spike, lw=1.2, label=n,
                        weights=np.full(len(x), 1.0 / max(len(x), 1)) if spike else None)  # fmt: skip
            if spike:
                ax.set_yscale("log")
            ax.tick_params(labelsize=6)
        ax.set_title(col, fontsize=8)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return axes


def association_heatmaps(matrices: Mapping[str, object], *, size: float = 3.6, diff: bool = True):
    """Square association matrices side by side (e.g. ``{"real": A, "ours": B}``, pandas DataFrames with the same
    row and column labels, values in [0, 1]); with ``diff`` one more panel per non-first matrix: |it − the first|.
    Returns the axes."""
    import numpy as np

    plt = _plt()
    names = list(matrices)
    panels = [(n, np.asarray(matrices[n], dtype=float), "viridis", (0, 1)) for n in names]
    if diff:
        ref = panels[0][1]
        panels += [(f"|{n} − {names[0]}|", np.abs(np.asarray(matrices[n], dtype=float) - ref), "magma_r", (0, 0.3))
                   for n in names[1:]]  # fmt: skip
    labels = list(matrices[names[0]].columns)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), dpi=72, squeeze=False)
    for ax, (title, m, cmap, (lo, hi)) in zip(axes[0], panels, strict=True):
        im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_xticks(range(len(labels)))
        ax.set_yticks(range(len(labels)))
        ax.set_xticklabels([c[:10] for c in labels], rotation=90, fontsize=6)
        ax.set_yticklabels([c[:10] for c in labels], fontsize=6)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return axes[0]


def plot_steps_curve(curve, *, keys: Sequence[str] = ("shape_error", "trend_error"), floor=None, axes=None):
    """Quality against sampler steps: one panel per metric, mean ± std over seeds, log-scaled steps.

    ``curve``: a DataFrame indexed by steps with ``<key>`` and ``<key>_std`` columns (e.g.
    :func:`diffuse_edu.recipes.tabular_experiments.steps_curve`). ``floor``: optional ``{key: value}`` drawn as a
    dashed line (e.g. real held-out rows scored the same way)."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), dpi=72, squeeze=False)
        axes = axes[0]
    steps = list(curve.index)
    for ax, key in zip(axes, keys, strict=True):
        std = curve[f"{key}_std"].fillna(0.0) if f"{key}_std" in curve else 0.0
        ax.errorbar(steps, curve[key], yerr=std, fmt="o-", capsize=3, label="ours")
        if floor is not None and key in floor:
            ax.axhline(floor[key], ls="--", color="grey", label="real held-out rows")
        ax.set_xscale("log")
        ax.set_xlabel("sampler steps (network calls per row)")
        ax.set_ylabel(f"{key.replace('_', ' ')} (%)")
        ax.legend(fontsize=8)
    return axes
