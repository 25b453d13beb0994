r"""``TabularDiffusion``: mixed-type tables as multimodal objects, with a DataFrame API (Rojas et al. 2025, §5.2).

A table is a dict of modalities, one per column: numeric columns diffuse as Gaussians (after an exactly invertible
quantile-normal transform, :class:`~diffuse_edu.data.tabular.TableEncoder`), categorical columns as masked categories
with one vocabulary each, and a numeric column with missing values gets a companion ``"<col>__missing"`` indicator
column. One :class:`~diffuse_edu.nets.column_transformer.ColumnTransformer` denoises every column at once, each token
modulated by its own column's clock.

The clock decides what the trained model can do (:data:`CLOCKS`):

* ``"shared"`` — one clock for the whole row (the official tabular code): the diagonal only. Best for unconditional
  sampling; a given column at t = 0 next to noisy ones is a combination it never saw.
* ``"per-type"`` — one clock for the numeric columns, one for the categorical ones.
* ``"per-column"`` — every column its own clock (decoupled): every conditional, hence imputation of any pattern.
* ``"mixed"`` (default) — half of each batch on the shared clock, half per column: the diagonal for sampling plus the
  whole cube for imputation (:class:`~diffuse_edu.clocks.Mixture`).

``fit(df)`` trains with :func:`~diffuse_edu.train.train`; ``sample(n)`` draws rows with the joint sampler
(Euler–Maruyama on the numeric columns, tau-leaping on the categorical ones, the official grid by default);
``impute(df)`` fills every NaN from the model's conditional given the observed cells of *that* row — any pattern per
row, through the sampler's per-example given masks — and never changes an observed cell. ``save`` / ``load`` write
safetensors + JSON (the encoder included), never pickle.

Example::

    from diffuse_edu import TabularDiffusion
    from diffuse_edu.data.adult import load_adult

    model = TabularDiffusion().fit(load_adult("train"), steps=4000)
    synthetic = model.sample(1000, generator=torch.Generator().manual_seed(0))
    filled = model.impute(rows_with_nan)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .._checks import check_device, check_number, check_positive_int
from ..checkpoint import load_checkpoint, save_checkpoint
from ..clocks import Clock, Decoupled, Grouped, Mixture
from ..config import get_device
from ..data.batching import infinite_batches
from ..data.tabular import KINDS, TableEncoder
from ..gaussian import GaussianProcess
from ..joint import JointProcess
from ..masked import MaskedProcess
from ..nets.column_transformer import PRESETS, ColumnTransformer
from ..sampling import model_device, sample_joint
from ..schedules import get_schedule
from ..train import train

__all__ = ["CLOCKS", "TabularDiffusion"]

CLOCKS = ("shared", "per-type", "per-column", "mixed")
_FORMAT = "diffuse_edu-tabular-diffusion"
_NAN_LOGIT = -1e4  # a finite "impossible": the sampler refuses non-finite network outputs


class _ForbidCategories(nn.Module):
    """Wraps a table network so that some categories (e.g. the NaN category when imputing) are never drawn."""

    def __init__(self, net: nn.Module, forbidden: Mapping[str, Sequence[int]]):
        super().__init__()
        self.net, self.forbidden = net, {k: list(v) for k, v in forbidden.items()}

    def forward(self, xs, ts):
        out = dict(self.net(xs, ts))
        for name, ids in self.forbidden.items():
            logits = out[name].clone()
            logits[..., ids] = _NAN_LOGIT
            out[name] = logits
        return out


class TabularDiffusion:
    """Diffusion model of a mixed-type table: ``fit`` / ``sample`` / ``impute`` / ``save`` / ``load``.

    Args:
        clock: ``"shared"``, ``"per-type"``, ``"per-column"``, ``"mixed"`` (module docstring) or any
            :class:`~diffuse_edu.clocks.Clock` over the model columns.
        preset: network size, a key of :data:`~diffuse_edu.nets.column_transformer.PRESETS` (``"small"`` ≈ 70 K
            parameters on Adult, like the official model); ``net_kwargs`` override single settings.
        numeric_schedule: schedule of the numeric columns' Gaussian process (name or
            :class:`~diffuse_edu.schedules.Schedule`; the official code uses a linear-β VP schedule).
        categorical_schedule: schedule of the categorical columns' masked process (log-linear, as the official code).
        prediction: what the network predicts for numeric columns (``"eps"``, ``"x0"`` or ``"v"``).
        categorical_loss: ``"elbo"`` (the masked NELBO) or ``"ce"`` (the official unweighted cross-entropy).
        numeric_weight, categorical_weight: loss weights λ of the two column kinds (the official λ_num, λ_cat).
        overrides: column → kind (``"numeric"``, ``"integer"``, ``"categorical"``) for the schema inference.
        nan_as_category: a categorical NaN is its own category (True, default) or a missing cell.
        max_int_categories: integer columns with at most this many distinct values are categorical.
    """

    def __init__(
        self,
        *,
        clock: str | Clock = "mixed",
        preset: str = "small",
        net_kwargs: Mapping | None = None,
        numeric_schedule="vp-linear",
        categorical_schedule="log-linear",
        prediction: str = "eps",
        categorical_loss: str = "elbo",
        numeric_weight: float = 1.0,
        categorical_weight: float = 1.0,
        overrides: Mapping[str, str] | None = None,
        nan_as_category: bool = True,
        max_int_categories: int = 10,
    ):
        if not isinstance(clock, Clock) and clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS} or a diffuse_edu.clocks.Clock; got {clock!r}.")
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESETS)}; got {preset!r}.")
        if categorical_loss not in ("elbo", "ce"):
            raise ValueError(f"categorical_loss must be 'elbo' or 'ce'; got {categorical_loss!r}.")
        # Settings used only when fitting are checked now, not after the encoder is fitted.
        if net_kwargs is not None and not isinstance(net_kwargs, Mapping):
            raise TypeError(f"net_kwargs must be a dict of ColumnTransformer settings or None; got {net_kwargs!r}.")
        fixed = sorted({"numeric", "categorical"} & set(net_kwargs or {}))
        if fixed:
            raise ValueError(f"net_kwargs cannot set {fixed}: the columns come from the fitted table.")
        try:  # a one-column network of the chosen size: a typo or a bad size fails here with ColumnTransformer's words
            ColumnTransformer.from_preset(preset, ["x"], None, **dict(net_kwargs or {}))
        except TypeError as err:
            raise TypeError(f"net_kwargs: {err}") from None
        if overrides is not None and not isinstance(overrides, Mapping):
            raise TypeError(f"overrides must be a dict column → kind or None; got {overrides!r}.")
        for name, kind in dict(overrides or {}).items():
            if kind not in KINDS:
                raise ValueError(f"overrides[{name!r}] must be one of {KINDS}; got {kind!r}.")
        if not isinstance(nan_as_category, bool):
            raise TypeError(f"nan_as_category must be a bool; got {nan_as_category!r}.")
        check_positive_int(max_int_categories, "max_int_categories", minimum=0)
        # Fail early on bad settings rather than after fitting the encoder.
        self._numeric_schedule = get_schedule(numeric_schedule)
        self._categorical_schedule = get_schedule(categorical_schedule)
        GaussianProcess(self._numeric_schedule, prediction=prediction)
        self.settings = dict(
            clock=clock if isinstance(clock, str) else repr(clock),
            preset=preset,
            net_kwargs=dict(net_kwargs or {}),
            numeric_schedule=numeric_schedule if isinstance(numeric_schedule, str) else repr(numeric_schedule),
            categorical_schedule=(
                categorical_schedule if isinstance(categorical_schedule, str) else repr(categorical_schedule)
            ),
            prediction=prediction,
            categorical_loss=categorical_loss,
            numeric_weight=check_number(numeric_weight, "numeric_weight", 0.0),
            categorical_weight=check_number(categorical_weight, "categorical_weight", 0.0),
            overrides=dict(overrides or {}),
            nan_as_category=bool(nan_as_category),
            max_int_categories=max_int_categories,
        )
        self._clock = clock
        self.encoder: TableEncoder | None = None
        self.joint: JointProcess | None = None
        self.net: nn.Module | None = None
        self.history: dict = {}

    def __repr__(self) -> str:
        state = "not fitted" if self.net is None else f"{len(self.encoder.columns)} model columns"
        return f"TabularDiffusion(clock={self.settings['clock']!r}, preset={self.settings['preset']!r}; {state})"

    # -- building blocks ----------------------------------------------------------------------------------------------

    def _build(self, encoder: TableEncoder) -> None:
        s = self.settings
        processes, weights = {}, {}
        for col in encoder.columns:
            if col.kind == "numeric":
                processes[col.name] = GaussianProcess(
                    self._numeric_schedule, prediction=s["prediction"], step_method="euler-maruyama"
                )
                weights[col.name] = s["numeric_weight"]
            else:
                processes[col.name] = MaskedProcess(
                    col.vocab_size, self._categorical_schedule, loss_type=s["categorical_loss"],
                    step_method="tau-leaping",
                )  # fmt: skip
                weights[col.name] = s["categorical_weight"]
        self.encoder = encoder
        self.joint = JointProcess(processes, loss_weights=weights, event_shapes={n: (1,) for n in processes})
        if self.net is None:
            self.net = ColumnTransformer.from_preset(
                s["preset"], encoder.numeric_names, encoder.vocab_sizes, **s["net_kwargs"]
            )

    def clock(self) -> Clock:
        """The training clock over the model columns."""
        self._require_fit(fitted=False)
        names = list(self.joint.names)
        if isinstance(self._clock, Clock):
            return self._clock
        if self._clock == "shared":
            return Grouped([names])
        if self._clock == "per-type":
            return Grouped.by_kind(self.joint.processes)
        if self._clock == "per-column":
            return Decoupled()
        return Mixture([Grouped([names]), Decoupled()], [0.5, 0.5])

    def _require_fit(self, fitted: bool = True) -> None:
        if self.joint is None or (fitted and self.net is None):
            raise RuntimeError(
                "this TabularDiffusion is not fitted yet; call fit(df) first (or TabularDiffusion.load)."
            )

    @property
    def num_params(self) -> int:
        """Trainable parameters of the network."""
        self._require_fit()
        return sum(p.numel() for p in self.net.parameters())

    # -- fit ----------------------------------------------------------------------------------------------------------

    def fit(
        self,
        df: pd.DataFrame,
        *,
        steps: int = 4000,
        batch_size: int = 1024,
        lr: float = 1e-3,
        weight_decay: float = 0.03,
        warmup: int = 100,
        ema_decay: float = 0.999,
        device=None,
        seed: int = 0,
        progress: bool = True,
        **train_kwargs,
    ) -> TabularDiffusion:
        """Fit the encoder on ``df`` and train the network on it; returns ``self``.

        Args:
            df: the training table (any mix of numeric, integer, categorical and boolean columns, NaN allowed).
            steps, batch_size, lr, weight_decay, warmup, ema_decay: training settings (AdamW with linear warmup and
                cosine decay, as :func:`~diffuse_edu.train.train`; the official code uses lr 1e-3, weight decay 0.03).
            device: where to train (default :func:`~diffuse_edu.config.get_device`).
            seed: seeds the batch order, the diffusion noise and the network's initialisation.
            progress: a tqdm bar with the running loss.
            train_kwargs: any other option of :func:`~diffuse_edu.train.train` (``precision``, ``compile``,
                ``checkpoint_dir``, ``resume``, ...).
        After fitting, :attr:`history` holds ``loss`` (one per step), ``seconds`` and ``rows_per_s``.
        """
        check_positive_int(steps, "steps")
        check_positive_int(batch_size, "batch_size")
        check_positive_int(seed, "seed", minimum=0)
        device = check_device(device)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame; got {type(df).__name__}.")
        s = self.settings
        encoder = TableEncoder(
            overrides=s["overrides"], nan_as_category=s["nan_as_category"], max_int_categories=s["max_int_categories"]
        ).fit(df)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = None
            self._build(encoder)
        data = encoder.encode(df)
        batch_size = min(batch_size, len(df))
        batches = infinite_batches(data, batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
        device = torch.device(device) if device is not None else get_device()
        result = train(
            self.net, self.joint.loss_fn(self.clock()), batches, steps=steps, lr=lr, weight_decay=weight_decay,
            betas=(0.9, 0.999), warmup=min(warmup, steps), lr_decay="cosine", ema_decay=ema_decay, device=device,
            progress=progress, seed=seed, **train_kwargs,
        )  # fmt: skip
        self.net = (result.ema_model if result.ema_model is not None else result.model).eval()
        self.history = dict(loss=list(result.losses), seconds=result.seconds, rows_per_s=result.samples_per_s,
                            steps=steps, batch_size=batch_size, rows=len(df))  # fmt: skip
        return self

    # -- sample and impute --------------------------------------------------------------------------------------------

    def _plan(self, steps: int, grid: str, numeric_method: str, categorical_method: str) -> dict:
        names = self.joint.names
        methods = {
            n: (numeric_method if not self.joint[n].categorical else categorical_method) for n in names
        }  # fmt: skip
        return dict(steps=steps, grids={n: grid for n in names}, methods=methods,
                    final={n: "argmax" for n in names if self.joint[n].categorical}, t_eps=1e-3)  # fmt: skip

    def sample(
        self,
        n: int,
        *,
        steps: int = 50,
        generator: torch.Generator | None = None,
        numeric_method: str = "euler-maruyama",
        categorical_method: str = "tau-leaping",
        grid: str = "official",
        batch_size: int = 4096,
        device=None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Draw ``n`` synthetic rows: a DataFrame with the fitted columns, dtypes and category sets.

        Args:
            n: number of rows (≥ 1).
            steps: sampler steps (network calls per batch); the official sampler uses 1000 — see notebook 05 for how
                few are needed.
            generator: all randomness (seeded → the same rows every time, on any device).
            numeric_method, categorical_method: step methods of the two column kinds.
            grid: ``"official"`` (``linspace(1, 1e-3, steps)`` then 0), ``"uniform"`` or ``"edm"``.
            batch_size: rows per sampler call (memory).
            device: default the network's device.
        """
        self._require_fit()
        check_positive_int(n, "n")
        check_positive_int(batch_size, "batch_size")
        plan = self._plan(steps, grid, numeric_method, categorical_method)
        parts = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            res = sample_joint(self.joint, self.net, b, generator=generator, device=device, progress=progress, **plan)
            parts.append({k: v.cpu() for k, v in res.samples.items()})
        return self.encoder.decode({k: torch.cat([p[k] for p in parts]) for k in parts[0]})

    def impute(
        self,
        df: pd.DataFrame,
        *,
        steps: int = 50,
        generator: torch.Generator | None = None,
        numeric_method: str = "euler-maruyama",
        categorical_method: str = "tau-leaping",
        grid: str = "official",
        batch_size: int = 4096,
        allow_nan_category: bool = False,
        device=None,
    ) -> pd.DataFrame:
        """Fill every NaN of ``df`` from the model's conditional given the observed cells of its row.

        Any pattern of missing cells per row works (the sampler's per-example given masks). Observed cells are
        returned bit-identically (copied from ``df``). A numeric NaN is filled with a value (its "missing"
        indicator is held at "present"); a categorical NaN is filled with one of the column's categories — not the
        NaN category itself unless ``allow_nan_category``. Columns of the fitted table missing from ``df`` are
        imputed entirely.

        Raises:
            ValueError: unknown columns, unseen categories, infinite numbers (each naming the column).
        """
        self._require_fit()
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame; got {type(df).__name__}.")
        if len(df) == 0:
            raise ValueError("df is empty: there are no rows to impute.")
        check_positive_int(batch_size, "batch_size")
        if not isinstance(allow_nan_category, bool):
            raise TypeError(f"allow_nan_category must be a bool; got {allow_nan_category!r}.")
        values, given = self.encoder.encode_observed(df)
        enc = self.encoder
        if all(bool(m.all()) for m in given.values()):
            # No cell to fill (every cell observed, every column present): nothing to sample; columns in fitted order.
            return df[list(enc.schema.names)].copy()
        # A numeric NaN asks for a value: hold its missing-indicator at "present" (id 0) and sample the value.
        for col in enc.columns:
            if col.kind == "categorical" and col.name != enc.source_of(col.name):
                base = enc.source_of(col.name)
                to_fill = ~given[base]
                values[col.name] = torch.where(to_fill, torch.zeros_like(values[col.name]), values[col.name])
                given[col.name] = given[col.name] | to_fill
        net = self.net
        if not allow_nan_category:
            forbidden = {}
            for col in enc.columns:
                if col.kind == "categorical" and col.name == enc.source_of(col.name):
                    vocab = enc.vocab(col.name)
                    ids = [i for i, v in enumerate(vocab) if isinstance(v, float) and math.isnan(v)]
                    if ids:
                        forbidden[col.name] = ids
            if forbidden:
                net = _ForbidCategories(self.net, forbidden)
        plan = self._plan(steps, grid, numeric_method, categorical_method)
        device = device if device is not None else model_device(self.net)
        parts = []
        n = len(df)
        for start in range(0, n, batch_size):
            sl = slice(start, min(n, start + batch_size))
            if all(bool(m[sl].all()) for m in given.values()):  # a batch with nothing to fill: keep its values
                parts.append({k: v[sl].cpu() for k, v in values.items()})
                continue
            res = sample_joint(
                self.joint, net, given={k: v[sl] for k, v in values.items()},
                given_mask={k: m[sl] for k, m in given.items()}, generator=generator, device=device, **plan,
            )  # fmt: skip
            parts.append({k: v.cpu() for k, v in res.samples.items()})
        decoded = enc.decode({k: torch.cat([p[k] for p in parts]) for k in parts[0]})
        decoded.index = df.index
        # Observed cells are copied from df (bit-identical); only the NaN cells take the model's values.
        out = pd.DataFrame(index=df.index)
        for name in decoded.columns:
            if name not in df.columns:
                out[name] = decoded[name]
                continue
            src, missing = df[name], df[name].isna()
            if not missing.any():
                out[name] = src
                continue
            filled = src.astype(object).where(~missing, decoded[name].astype(object))
            try:
                out[name] = filled.astype(decoded[name].dtype)
            except (TypeError, ValueError):
                out[name] = filled
        return out

    # -- persistence --------------------------------------------------------------------------------------------------

    def save(self, path) -> tuple[Path, Path]:
        """Write ``<path>.safetensors`` (the EMA network weights) and ``<path>.json`` (settings, encoder, history)."""
        self._require_fit()
        if not isinstance(self._clock, str):
            raise ValueError("a model with a custom Clock object cannot be saved by name; use one of CLOCKS.")
        config = dict(format=_FORMAT, settings=self.settings, encoder=json.loads(self.encoder.to_json()),
                      history=self.history)  # fmt: skip
        return save_checkpoint(path, self.net, config)

    @classmethod
    def load(cls, path, device=None) -> TabularDiffusion:
        """Rebuild a model written by :meth:`save` (weights checked against their sha256)."""
        ck = load_checkpoint(path, device=device)
        cfg = ck.config
        if cfg.get("format") != _FORMAT:
            raise ValueError(
                f"{path} is a diffuse_edu checkpoint but not a TabularDiffusion (format {cfg.get('format')!r})."
            )
        s = dict(cfg["settings"])
        model = cls(**{k: s[k] for k in (
            "clock", "preset", "net_kwargs", "numeric_schedule", "categorical_schedule", "prediction",
            "categorical_loss", "numeric_weight", "categorical_weight", "overrides", "nan_as_category",
            "max_int_categories")})  # fmt: skip
        model.net = ck.model.eval()
        model._build(TableEncoder.from_json(json.dumps(cfg["encoder"])))
        model.history = cfg.get("history", {})
        return model

    # -- handy for evaluation -----------------------------------------------------------------------------------------

    def nelbo_terms(self, df: pd.DataFrame, generator: torch.Generator | None = None) -> dict[str, float]:
        """The per-column training loss on ``df`` at one random clock draw (a quick held-out check)."""
        self._require_fit()
        x0s = {k: v.to(model_device(self.net)) for k, v in self.encoder.encode(df).items()}
        with torch.no_grad():
            _, terms = self.joint.training_loss(self.net, x0s, self.clock(), generator, return_terms=True)
        return {k: float(v) for k, v in terms.items()}
