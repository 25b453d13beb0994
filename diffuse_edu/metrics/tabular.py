"""Quality of a synthetic table: the numbers the tabular diffusion papers report, as pure functions of DataFrames.

Every function takes pandas DataFrames (real, synthetic, sometimes a holdout) and returns plain numbers; nothing here
samples a model. Column kinds come from ``metadata`` — sdmetrics' single-table dict
``{"columns": {name: {"sdtype": "numerical" | "categorical"}}}``, a plain ``{name: kind}`` mapping (``"numeric"`` and
``"integer"`` count as numerical), or None to infer them from the real frame's dtypes (numbers → numerical, anything
else → categorical).

| metric | what it measures | unit | ideal |
|---|---|---|---|
| :func:`shape_trend_errors` | 1 − sdmetrics Column Shapes / Column Pair Trends | % error | 0 |
| :func:`mle_auc` | XGBoost trained on synthetic rows, tested on the real test split | AUC, accuracy | real data's |
| :func:`alpha_precision_beta_recall` | fidelity / coverage (Alaa et al. 2022, naive variant) | % | 100 |
| :func:`c2st` | sdmetrics ``LogisticDetection`` | score in [0, 1] | 1 |
| :func:`dcr_share` | synthetic rows closer to a training row than to a holdout row | % | 50 |
| :func:`imputation_scores` | hidden cells: accuracy (categorical), RMSE (numerical) | ratio, units | 1, 0 |
| :func:`target_imputation_scores` | an imputed label column | AUC, accuracy | 1 |

The units follow the papers (TabSyn, Zhang et al. 2024; TabDiff, Shi et al. 2025; Diffuse Everything, Rojas et al.
2025, Table 2): shape/trend errors, α-precision, β-recall and DCR in %, AUC and the C2ST score in [0, 1].
:func:`summarize_seeds` turns one dict per sampling seed into mean ± std (the papers use ≥ 5 seeds).

**Shared preprocessing for the distance-based metrics** (α/β, DCR; :class:`TableFeatures`): numerical columns are
min-max scaled by the *real* frame's range, categorical columns one-hot encoded over the real frame's categories
(values compared as strings; NaN is its own category; the vocabulary is the union over the frames compared, so two
different values are always 2 apart in L1).
A numerical column with NaN in the real frame gets one extra 0/1 feature "missing" and NaN is scaled as 0. This is
TabSyn's DCR preprocessing and synthcity's naive α-precision input (numbers plus one-hot, min-max scaled).

Distances are computed in float32 blocks, with the one-hot part as an exact integer from a matrix product
(L1 = |a|₁ + |b|₁ − 2a·b, and ‖a − b‖² likewise for 0/1 vectors) and the numeric part from explicit differences, so
identical rows sit at distance exactly 0 and copied rows are recognised as copies.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = [
    "XGB_GRID_TABSYN",
    "XGB_GRID_FAST",
    "column_sdtypes",
    "sdmetrics_metadata",
    "TableFeatures",
    "shape_trend_errors",
    "mle_auc",
    "alpha_precision_beta_recall",
    "c2st",
    "dcr_share",
    "imputation_scores",
    "target_imputation_scores",
    "summarize_seeds",
    "format_summary",
]

#: TabSyn's / Diffuse Everything's XGBoost grid for the MLE task (36 configurations, chosen by validation AUC).
XGB_GRID_TABSYN = {
    "n_estimators": [10, 50, 100],
    "min_child_weight": [1, 10],
    "max_depth": [5, 10, 20],
    "gamma": [0.0, 1.0],
}
#: A 4-configuration grid for FAST mode and tests.
XGB_GRID_FAST = {"n_estimators": [50], "min_child_weight": [1, 10], "max_depth": [5, 10], "gamma": [0.0]}

_NUMERICAL = {"numerical", "numeric", "integer"}
_CATEGORICAL = {"categorical", "boolean", "ordinal"}


# ----------------------------------------------------------------------------------------------------------------
# Column kinds and validation
# ----------------------------------------------------------------------------------------------------------------


def column_sdtypes(real: pd.DataFrame, metadata: Mapping | None = None) -> dict[str, str]:
    """Column → ``"numerical"`` or ``"categorical"`` for the columns of ``real``.

    Args:
        real: the reference frame (its dtypes decide when ``metadata`` is None).
        metadata: sdmetrics' ``{"columns": {name: {"sdtype": ...}}}``, a ``{name: kind}`` mapping, or None.
    """
    _check_frame(real, "real")
    if metadata is None:
        return {
            c: "numerical"
            if pd.api.types.is_numeric_dtype(real[c]) and not pd.api.types.is_bool_dtype(real[c])
            else "categorical"
            for c in real.columns
        }
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping or None; got {type(metadata).__name__}.")
    cols = metadata["columns"] if isinstance(metadata.get("columns"), Mapping) else metadata
    out = {}
    for name, spec in cols.items():
        kind = spec.get("sdtype") if isinstance(spec, Mapping) else spec
        if kind in _NUMERICAL:
            out[name] = "numerical"
        elif kind in _CATEGORICAL:
            out[name] = "categorical"
        else:
            raise ValueError(f"metadata for column {name!r}: unknown kind {kind!r}; use 'numerical' or 'categorical'.")
    missing = [c for c in real.columns if c not in out]
    extra = [c for c in out if c not in real.columns]
    if missing or extra:
        raise ValueError(f"metadata and table disagree: columns without metadata {missing}, unknown {extra}.")
    return {c: out[c] for c in real.columns}


def sdmetrics_metadata(sdtypes: Mapping[str, str]) -> dict:
    """``{name: "numerical"|"categorical"}`` → sdmetrics' single-table metadata dict."""
    return {"columns": {c: {"sdtype": k} for c, k in sdtypes.items()}}


def _check_frame(df, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame; got {type(df).__name__}.")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {df.shape}); expected at least one row and one column.")
    names = list(df.columns)
    if not all(isinstance(c, str) for c in names):
        raise TypeError(
            f"{what}: column names must be strings; got {[c for c in names if not isinstance(c, str)][:3]!r}."
        )
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ValueError(f"{what} has duplicate column names: {dup}.")
    return df


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    return seed


def _check_max_rows(max_rows) -> None:
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"max_rows must be a positive int or None; got {max_rows!r}.")


def _aligned(real: pd.DataFrame, other: pd.DataFrame, what: str, sdtypes: Mapping[str, str]) -> pd.DataFrame:
    """``other`` with ``real``'s columns in ``real``'s order; numerical columns must be numeric in both."""
    _check_frame(other, what)
    missing = [c for c in real.columns if c not in other.columns]
    extra = [c for c in other.columns if c not in real.columns]
    if missing or extra:
        raise ValueError(f"{what} must have the real table's columns: missing {missing}, unexpected {extra}.")
    for c, kind in sdtypes.items():
        if kind == "numerical":
            for name, frame in (("real", real), (what, other)):
                s = frame[c]
                if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                    raise TypeError(f"column {c!r} is numerical but {name} has dtype {s.dtype}; expected numbers.")
                if np.isinf(s.to_numpy(dtype=np.float64, na_value=np.nan)).any():
                    raise ValueError(f"column {c!r} of {name} holds infinite values.")
    return other[list(real.columns)]


# ----------------------------------------------------------------------------------------------------------------
# Shared preprocessing for distances
# ----------------------------------------------------------------------------------------------------------------


class TableFeatures:
    """Min-max numbers and one-hot categories, fitted on a reference (real) frame (module docstring).

    Args:
        real: reference frame: numeric ranges and categories.
        sdtypes: column → ``"numerical"`` / ``"categorical"`` (see :func:`column_sdtypes`).
        others: frames that will be compared with ``real``; their categories join the one-hot vocabulary, so any
            two different values are equally far apart (2 in L1) whichever frame they come from. A value outside
            the vocabulary encodes as all zeros.

    Attributes:
        n_numeric: number of numeric features (scaled columns, then missing flags), first in every row.
        n_categorical: number of categorical columns (each contributes one block of one-hot features).
    """

    def __init__(self, real: pd.DataFrame, sdtypes: Mapping[str, str], others: Sequence[pd.DataFrame] = ()):
        self.sdtypes = dict(sdtypes)
        self.num_cols = [c for c, k in self.sdtypes.items() if k == "numerical"]
        self.cat_cols = [c for c, k in self.sdtypes.items() if k == "categorical"]
        self.lo, self.span, self.flag_cols = {}, {}, []
        for c in self.num_cols:
            x = real[c].to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isnan(x).all():
                raise ValueError(f"column {c!r} of the real frame is all NaN.")
            lo, hi = np.nanmin(x), np.nanmax(x)
            self.lo[c], self.span[c] = lo, (hi - lo) if hi > lo else 1.0
            if np.isnan(x).any():
                self.flag_cols.append(c)
        frames = [real, *others]
        self.categories = {c: sorted(set().union(*(_as_str(f[c]) for f in frames))) for c in self.cat_cols}
        self.n_numeric = len(self.num_cols) + len(self.flag_cols)
        self.n_categorical = len(self.cat_cols)

    def transform(self, df: pd.DataFrame, what: str = "df") -> tuple[np.ndarray, np.ndarray]:
        """Features of ``df``: (numeric float64 (N, n_numeric), one-hot float32 (N, Σ categories))."""
        cols = []
        for c in self.num_cols:
            x = (df[c].to_numpy(dtype=np.float64, na_value=np.nan) - self.lo[c]) / self.span[c]
            if np.isnan(x).any() and c not in self.flag_cols:
                raise ValueError(f"column {c!r} of {what} holds NaN but the real frame has none there.")
            cols.append(np.nan_to_num(x, nan=0.0))
        cols += [df[c].isna().to_numpy(dtype=np.float64) for c in self.flag_cols]
        num = np.stack(cols, axis=1) if cols else np.zeros((len(df), 0))
        blocks = []
        for c in self.cat_cols:
            cats = self.categories[c]
            codes = pd.Categorical(_as_str(df[c]), categories=cats).codes  # -1 for unseen: an all-zero block
            block = np.zeros((len(df), len(cats)), dtype=np.float32)
            rows = np.nonzero(codes >= 0)[0]
            block[rows, codes[rows]] = 1.0
            blocks.append(block)
        onehot = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(df), 0), dtype=np.float32)
        return num, onehot


def _as_str(s: pd.Series) -> np.ndarray:
    # Strings as the comparison key (so 2007 and "2007" agree); NaN becomes the category "nan", as in TabSyn.
    return np.array(
        ["nan" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in s], dtype=object
    )


def _nearest(
    q: tuple[np.ndarray, np.ndarray],
    r: tuple[np.ndarray, np.ndarray],
    p: int,
    exclude_self: bool = False,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each query row to its nearest reference row, and that row's index.

    Args:
        q, r: (numeric, one-hot) features from :meth:`TableFeatures.transform`.
        p: 1 (L1) or 2 (Euclidean).
        exclude_self: q and r are the same rows: skip each row's own index (the nearest *other* row).
        chunk: query rows per block (a block's distance matrix is chunk × len(r) float32).
    Returns:
        distances float64 shape (Nq,), indices int64 shape (Nq,).
    """
    qn, rn = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (q[0], r[0]))
    qc, rc = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (q[1], r[1]))
    rc_t = rc.T.contiguous()
    q_ones, r_ones = qc.sum(1), rc.sum(1)  # |a|₁ = ‖a‖² for 0/1 vectors
    dists, idx = [], []
    for s in range(0, qn.shape[0], chunk):
        e = min(s + chunk, qn.shape[0])
        if qn.shape[1]:
            # numeric part by explicit differences (no ‖a‖² + ‖b‖² − 2a·b cancellation: equal rows give exactly 0)
            d = torch.cdist(qn[s:e], rn, p=p, compute_mode="donot_use_mm_for_euclid_dist")  # (chunk, Nr)
            if p == 2:
                d.square_()
        else:
            d = torch.zeros(e - s, rn.shape[0])
        # one-hot part, an exact small integer: |a − b|₁ = ‖a − b‖² = |a| + |b| − 2 a·b (float32 sums of 0/1 are exact)
        d.addmm_(qc[s:e], rc_t, alpha=-2.0).add_(q_ones[s:e, None]).add_(r_ones[None, :])
        if exclude_self:
            d[torch.arange(e - s), torch.arange(s, e)] = math.inf
        m = d.min(dim=1)  # for p = 2 the minimum of squared distances: one square root per row, after
        dists.append(m.values.double().clamp_min(0.0).sqrt() if p == 2 else m.values.double())
        idx.append(m.indices)
    return torch.cat(dists).numpy(), torch.cat(idx).numpy()


def _subsample(df: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    if n is None or len(df) <= n:
        return df
    return df.iloc[np.sort(rng.choice(len(df), n, replace=False))]


# ----------------------------------------------------------------------------------------------------------------
# Fidelity: shapes, trends, α-precision / β-recall, detection
# ----------------------------------------------------------------------------------------------------------------


def shape_trend_errors(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Mapping | None = None) -> dict:
    """Column-shape and column-pair-trend errors (%) with sdmetrics, as TabSyn / TabDiff / Diffuse Everything report.

    Shape: per column, KSComplement (numerical) or TVComplement (categorical); Trend: per pair of columns,
    CorrelationSimilarity (two numerical columns, Pearson) or ContingencySimilarity (otherwise; numerical columns
    binned). Every column and every pair counts (sdmetrics' newer reports drop weakly correlated pairs by default; we
    switch that off, which is how the papers' sdmetrics versions scored). Error = 100 · (1 − mean score).

    Returns:
        ``{"shape_error": %, "trend_error": %, "shape_by_column": {col: score}, "trend_by_pair": {"a|b": score}}``
        (per-column/pair values are sdmetrics scores in [0, 1], higher is better).
    """
    from sdmetrics.reports.single_table._properties import ColumnPairTrends, ColumnShapes

    sdtypes = column_sdtypes(real, metadata)
    synthetic = _aligned(real, synthetic, "synthetic", sdtypes)
    meta = sdmetrics_metadata(sdtypes)
    shapes, trends = ColumnShapes(), ColumnPairTrends()
    # Every pair contributes (thresholds 0), as in the papers.
    trends.real_correlation_threshold = 0
    trends.real_association_threshold = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sdmetrics warns on constant columns and deprecations
        shape = shapes.get_score(real, synthetic, meta)
        trend = trends.get_score(real, synthetic, meta) if len(real.columns) > 1 else float("nan")
    by_col = dict(zip(shapes.details["Column"], shapes.details["Score"].astype(float), strict=True))
    by_pair = {}
    if len(real.columns) > 1:
        d = trends.details
        by_pair = {f"{a}|{b}": float(s) for a, b, s in zip(d["Column 1"], d["Column 2"], d["Score"], strict=True)}
    return {
        "shape_error": 100.0 * (1.0 - float(shape)),
        "trend_error": 100.0 * (1.0 - float(trend)),
        "shape_by_column": by_col,
        "trend_by_pair": by_pair,
    }


def alpha_precision_beta_recall(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    metadata: Mapping | None = None,
    n_alphas: int = 30,
    *,
    max_rows: int | None = None,
    seed: int = 0,
) -> dict:
    """α-precision and β-recall (Alaa et al. 2022), the "naive" variant TabSyn and Diffuse Everything report (%).

    On the shared features (module docstring), with center c = mean of the real rows and α on a grid of ``n_alphas``
    points in [0, 1]:

    * α-precision curve: share of synthetic rows inside the real ball of radius r_α (the α-quantile of real rows'
      distances to c) — a faithful generator puts a share α of its rows in the ball holding a share α of real rows;
    * β-recall curve: share of real rows whose nearest synthetic row is nearer than their nearest other real row and
      lies within the β-quantile ball of the synthetic rows (around the synthetic mean);
    * score = 1 − Σ_α |curve(α) − α| / Σ_α α, reported in %.

    This is synthcity's ``AlphaPrecision`` on raw features (its keys ``delta_precision_alpha_naive`` /
    ``delta_coverage_beta_naive``), computed here with exact distances. The papers use as many synthetic rows as real
    ones; the formulas do not require it. Cost: two nearest-neighbour searches of len(real) × len(real) pairs
    (about a minute for Adult's 32 K rows on 2 CPU cores); ``max_rows`` subsamples both frames (seeded) for speed.

    Args:
        real, synthetic: frames with the same columns.  metadata: column kinds (module docstring).
        n_alphas: points of the α grid.  max_rows: subsample each frame to at most this many rows (None: all).
        seed: for the subsample.
    Returns:
        ``{"alpha_precision": %, "beta_recall": %}``.
    """
    sdtypes = column_sdtypes(real, metadata)
    synthetic = _aligned(real, synthetic, "synthetic", sdtypes)
    if isinstance(n_alphas, bool) or not isinstance(n_alphas, int) or n_alphas < 2:
        raise ValueError(f"n_alphas must be an int >= 2; got {n_alphas!r}.")
    if len(real) < 2:
        raise ValueError("real needs at least 2 rows (each real row is compared with its nearest other real row).")
    _check_max_rows(max_rows)
    if max_rows is not None and max_rows < 2:
        raise ValueError(f"max_rows must be >= 2 here (real needs two rows); got {max_rows}.")
    rng = np.random.default_rng(_check_seed(seed))
    real, synthetic = _subsample(real, max_rows, rng), _subsample(synthetic, max_rows, rng)
    feats = TableFeatures(real, sdtypes, [synthetic])
    xr, xs = feats.transform(real, "real"), feats.transform(synthetic, "synthetic")
    real_full, syn_full = np.hstack([xr[0], xr[1]]), np.hstack([xs[0], xs[1]])
    alphas = np.linspace(0.0, 1.0, n_alphas)
    center = real_full.mean(axis=0)
    radii = np.quantile(np.linalg.norm(real_full - center, axis=1), alphas)
    syn_to_center = np.linalg.norm(syn_full - center, axis=1)
    alpha_curve = np.array([(syn_to_center <= r).mean() for r in radii])

    real_to_real, _ = _nearest(xr, xr, p=2, exclude_self=True)
    real_to_syn, nn_syn = _nearest(xr, xs, p=2)
    syn_center = syn_full.mean(axis=0)
    closest_d = np.linalg.norm(syn_full[nn_syn] - syn_center, axis=1)
    closest_radii = np.quantile(closest_d, alphas)
    beta_curve = np.array([((real_to_syn <= real_to_real) & (closest_d <= r)).mean() for r in closest_radii])

    def score(curve):
        return 100.0 * (1.0 - np.abs(alphas - curve).sum() / alphas.sum())

    return {"alpha_precision": float(score(alpha_curve)), "beta_recall": float(score(beta_curve))}


def c2st(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Mapping | None = None, *, seed: int = 0) -> float:
    """Classifier two-sample test score: sdmetrics' ``LogisticDetection`` (as TabSyn's C2ST).

    A logistic regression tries to tell real from synthetic rows (3-fold cross-validated ROC AUC on sdmetrics' own
    reversible transforms); score = 1 − (2·max(AUC, 0.5) − 1): 1 when it cannot tell them apart, 0 when it always can.

    Two changes to calling sdmetrics directly: its folds are shuffled from NumPy's global generator, which we seed
    with ``seed`` (and restore afterwards), so the score is reproducible; and when ``synthetic`` holds a category that
    ``real`` lacks (a rare value of a subsample, say) — where sdmetrics' one-hot encoder, fitted on the real frame
    only, would raise — the same transforms are fitted on both frames together, as the distance metrics do.
    """
    from sdmetrics.single_table import LogisticDetection

    sdtypes = column_sdtypes(real, metadata)
    synthetic = _aligned(real, synthetic, "synthetic", sdtypes)
    unseen = any(
        not set(_as_str(synthetic[c])) <= set(_as_str(real[c])) for c, k in sdtypes.items() if k == "categorical"
    )
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not unseen:
                return float(LogisticDetection.compute(real, synthetic, sdmetrics_metadata(sdtypes)))
            return _c2st_union(real, synthetic)
    finally:
        np.random.set_state(state)


def _c2st_union(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """sdmetrics' LogisticDetection with its transforms fitted on both frames (categories of either are known)."""
    from sdmetrics.single_table import LogisticDetection
    from sdmetrics.utils import HyperTransformer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    ht = HyperTransformer()
    ht.fit(pd.concat([real, synthetic], ignore_index=True))
    x = np.concatenate([ht.transform(real).to_numpy(), ht.transform(synthetic).to_numpy()]).astype(np.float64)
    x[np.isinf(x)] = np.nan
    y = np.hstack([np.ones(len(real)), np.zeros(len(synthetic))])
    scores = []
    for tr, te in StratifiedKFold(n_splits=3, shuffle=True).split(x, y):
        auc = roc_auc_score(y[te], LogisticDetection._fit_predict(x[tr], y[tr], x[te]))
        scores.append(max(0.5, auc) * 2 - 1)
    return float(1 - np.mean(scores))


# ----------------------------------------------------------------------------------------------------------------
# Privacy: distance to closest record
# ----------------------------------------------------------------------------------------------------------------


def dcr_share(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    metadata: Mapping | None = None,
    *,
    balance: bool = True,
    ties: str = "half",
    max_rows: int | None = None,
    seed: int = 0,
) -> dict:
    """Share (%) of synthetic rows whose closest record (L1 on shared features) is a training row, not a holdout one.

    A generator that does not copy its training rows is as close to unseen rows from the same distribution as to the
    training rows: 50 % is ideal, 100 % means memorised rows (TabSyn's DCR score). That reading needs train and
    holdout of equal size, so ``balance=True`` subsamples the larger one to the smaller's size (seeded).

    Args:
        synthetic, train, holdout: frames with the same columns; the features are fitted on ``train``.
        metadata: column kinds (see the module docstring).
        balance: subsample the larger of train / holdout to the other's size.
        ties: a synthetic row exactly as close to both sets counts ``"half"`` to each (default; then 50 % is the
            exact expectation for a non-copying generator even on mostly-categorical rows), or goes to the holdout
            (``"holdout"``, TabSyn's strict ``<``).
        max_rows: subsample each frame to at most this many rows first (None: all). Cost: len(synthetic) ×
            (len(train) + len(holdout)) distances, about half a minute for Adult on 2 CPU cores.
        seed: for the subsamples.
    Returns:
        ``{"dcr_share": %, "tie_share": % of synthetic rows equally close to both, "median_dcr_train",
        "median_dcr_holdout"}`` (medians of the L1 distances).
    """
    if ties not in ("half", "holdout"):
        raise ValueError(f"ties must be 'half' or 'holdout'; got {ties!r}.")
    if not isinstance(balance, bool):
        raise TypeError(f"balance must be a bool; got {balance!r}.")
    _check_max_rows(max_rows)
    _check_seed(seed)
    sdtypes = column_sdtypes(train, metadata)
    synthetic = _aligned(train, synthetic, "synthetic", sdtypes)
    holdout = _aligned(train, holdout, "holdout", sdtypes)
    rng = np.random.default_rng(seed)
    synthetic, train, holdout = (_subsample(f, max_rows, rng) for f in (synthetic, train, holdout))
    if balance and len(train) != len(holdout):
        n = min(len(train), len(holdout))
        if len(train) > n:
            train = train.iloc[np.sort(rng.choice(len(train), n, replace=False))]
        else:
            holdout = holdout.iloc[np.sort(rng.choice(len(holdout), n, replace=False))]
    feats = TableFeatures(train, sdtypes, [holdout, synthetic])
    xs = feats.transform(synthetic, "synthetic")
    d_train, _ = _nearest(xs, feats.transform(train, "train"), p=1)
    d_hold, _ = _nearest(xs, feats.transform(holdout, "holdout"), p=1)
    closer, tie = d_train < d_hold, d_train == d_hold
    share = closer.mean() + (0.5 * tie.mean() if ties == "half" else 0.0)
    return {
        "dcr_share": 100.0 * float(share),
        "tie_share": 100.0 * float(tie.mean()),
        "median_dcr_train": float(np.median(d_train)),
        "median_dcr_holdout": float(np.median(d_hold)),
    }


# ----------------------------------------------------------------------------------------------------------------
# Utility: machine-learning efficiency
# ----------------------------------------------------------------------------------------------------------------


def _xgb_features(train: pd.DataFrame, test: pd.DataFrame, sdtypes: Mapping[str, str]):
    """Numbers as they are (NaN allowed), categories one-hot over the training frame's values (unseen → zeros)."""
    from sklearn.preprocessing import OneHotEncoder

    num = [c for c, k in sdtypes.items() if k == "numerical"]
    cat = [c for c, k in sdtypes.items() if k == "categorical"]
    parts_tr = [train[num].to_numpy(dtype=np.float32, na_value=np.nan)] if num else []
    parts_te = [test[num].to_numpy(dtype=np.float32, na_value=np.nan)] if num else []
    if cat:
        enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)
        tr = np.stack([_as_str(train[c]) for c in cat], axis=1)
        te = np.stack([_as_str(test[c]) for c in cat], axis=1)
        parts_tr.append(enc.fit_transform(tr))
        parts_te.append(enc.transform(te))
    return np.hstack(parts_tr), np.hstack(parts_te)


def mle_auc(
    synthetic: pd.DataFrame,
    real_test: pd.DataFrame,
    target: str = "income",
    *,
    metadata: Mapping | None = None,
    positive=None,
    grid: Mapping[str, Sequence] | None = None,
    val_fraction: float = 1 / 9,
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict:
    """Machine-learning efficiency: train XGBoost on the synthetic table, test it on the real test split.

    The TabSyn / Diffuse Everything protocol: one-hot categorical features, a validation split of 1/9 of the training
    rows, a grid of 36 XGBoost configurations (:data:`XGB_GRID_TABSYN`: n_estimators ∈ {10, 50, 100},
    min_child_weight ∈ {1, 10}, max_depth ∈ {5, 10, 20}, gamma ∈ {0, 1}; ``tree_method="hist"``), the configuration with
    the best validation AUC scored on the test split. Numerical features enter as they are: TabSyn's log / min-max
    rescaling is monotone, and a tree model is unchanged by monotone transforms. Pass the real training table as
    ``synthetic`` for the real-data ceiling.

    Args:
        synthetic: training rows (synthetic, or real for the ceiling), with ``target``.
        real_test: the real test split, same columns.
        target: binary label column.
        metadata: column kinds (module docstring); the target's kind is ignored.
        positive: the positive label (default: the rarer label of ``real_test``, e.g. ``">50K"``).
        grid: XGBoost parameter grid (default :data:`XGB_GRID_TABSYN`; :data:`XGB_GRID_FAST` for quick runs).
        val_fraction: share of the training rows held out to choose the configuration.
        seed: validation split and XGBoost seed.  n_jobs: XGBoost threads (None: ``torch.get_num_threads()``, so
            ``torch.set_num_threads(1)`` keeps XGBoost on one thread too).
    Returns:
        ``{"auc", "accuracy", "val_auc", "best_params"}``; a training table with one label only gives AUC 0.5.
        Rows whose label is missing are left out of both tables.
    """
    from sklearn.metrics import accuracy_score, roc_auc_score
    from xgboost import XGBClassifier

    sdtypes = column_sdtypes(real_test, metadata)
    synthetic = _aligned(real_test, synthetic, "synthetic", sdtypes)
    if target not in sdtypes:
        raise ValueError(f"target column {target!r} is not in the table; columns are {list(sdtypes)}.")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1); got {val_fraction!r}.")
    _check_seed(seed)
    labels = real_test[target].dropna().unique().tolist()
    if len(labels) != 2:
        raise ValueError(f"target {target!r} must have exactly 2 labels in real_test; got {labels}.")
    if positive is None:
        positive = real_test[target].value_counts().idxmin()
    elif positive not in labels:
        raise ValueError(f"positive={positive!r} is not a label of {target!r}; labels are {labels}.")
    # Rows without a label teach and test nothing.
    synthetic, real_test = synthetic[synthetic[target].notna()], real_test[real_test[target].notna()]
    if len(synthetic) == 0:
        raise ValueError(f"synthetic has no row with a {target!r} label.")
    feat_types = {c: k for c, k in sdtypes.items() if c != target}
    y_tr = (synthetic[target] == positive).to_numpy(dtype=np.int64)
    y_te = (real_test[target] == positive).to_numpy(dtype=np.int64)
    x_tr, x_te = _xgb_features(synthetic, real_test, feat_types)
    if y_tr.min() == y_tr.max():
        # One label only: the best any classifier can do is a constant.
        return {"auc": 0.5, "accuracy": float((y_te == y_tr[0]).mean()), "val_auc": float("nan"), "best_params": {}}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_tr))
    n_val = max(1, int(len(y_tr) * val_fraction))
    val, fit = order[:n_val], order[n_val:]
    if n_jobs is None:
        n_jobs = torch.get_num_threads()
    grid = dict(XGB_GRID_TABSYN if grid is None else grid)
    best, best_auc, best_model = None, -1.0, None
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid.keys(), values, strict=True))
        model = XGBClassifier(
            **params, objective="binary:logistic", tree_method="hist", n_jobs=n_jobs, random_state=seed, verbosity=0
        )
        model.fit(x_tr[fit], y_tr[fit])
        y_val = y_tr[val]
        auc = roc_auc_score(y_val, model.predict_proba(x_tr[val])[:, 1]) if y_val.min() != y_val.max() else 0.5
        if auc > best_auc:
            best, best_auc, best_model = params, auc, model
    proba = best_model.predict_proba(x_te)[:, 1]
    return {
        "auc": float(roc_auc_score(y_te, proba)),
        "accuracy": float(accuracy_score(y_te, proba >= 0.5)),
        "val_auc": float(best_auc),
        "best_params": best,
    }


# ----------------------------------------------------------------------------------------------------------------
# Imputation
# ----------------------------------------------------------------------------------------------------------------


def imputation_scores(imputed: pd.DataFrame, truth: pd.DataFrame, mask, metadata: Mapping | None = None) -> dict:
    """Scores of imputed cells against the hidden truth: accuracy for categorical cells, RMSE for numerical ones.

    Args:
        imputed: the table after imputation.  truth: the same rows before hiding.
        mask: bool DataFrame or array of ``truth``'s shape, True where a cell was hidden and imputed.
        metadata: column kinds (module docstring, inferred from ``truth``).
    Returns:
        ``{"accuracy": pooled accuracy over every hidden categorical cell, "nrmse": mean over numerical columns of
        RMSE / std(truth column), "by_column": {col: {"n", "accuracy" or "rmse"}}}``; NaN matches NaN in categorical
        columns, and numerical cells whose truth is NaN are left out (counted in ``"n_skipped"``).
    """
    sdtypes = column_sdtypes(truth, metadata)
    imputed = _aligned(truth, imputed, "imputed", sdtypes)
    if len(imputed) != len(truth):
        raise ValueError(f"imputed has {len(imputed)} rows, truth {len(truth)}; expected the same rows.")
    m = mask[list(truth.columns)].to_numpy() if isinstance(mask, pd.DataFrame) else np.asarray(mask)
    if m.shape != truth.shape or m.dtype != bool:
        raise ValueError(f"mask must be a bool array of truth's shape {truth.shape}; got {m.dtype} {m.shape}.")
    by_col, hits, cells, nrmse = {}, 0, 0, []
    for j, c in enumerate(truth.columns):
        rows = m[:, j]
        if not rows.any():
            continue
        if sdtypes[c] == "categorical":
            t, p = _as_str(truth[c][rows]), _as_str(imputed[c][rows])
            ok = int((t == p).sum())
            by_col[c] = {"n": int(rows.sum()), "accuracy": ok / rows.sum()}
            hits, cells = hits + ok, cells + int(rows.sum())
        else:
            t = truth[c].to_numpy(dtype=np.float64, na_value=np.nan)
            p = imputed[c].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
            keep = ~np.isnan(t[rows])
            if np.isnan(p[keep]).any():
                raise ValueError(f"column {c!r}: imputed values are NaN where the truth has a number.")
            err = p[keep] - t[rows][keep]
            rmse = float(np.sqrt(np.mean(err**2))) if keep.any() else float("nan")
            std = float(np.nanstd(t))
            by_col[c] = {"n": int(keep.sum()), "n_skipped": int((~keep).sum()), "rmse": rmse}
            if keep.any():
                nrmse.append(rmse / std if std > 0 else float("nan"))
    return {
        "accuracy": hits / cells if cells else float("nan"),
        "nrmse": float(np.mean(nrmse)) if nrmse else float("nan"),
        "by_column": by_col,
    }


def target_imputation_scores(imputed, truth, positive) -> dict:
    """AUC and accuracy of an imputed label column (e.g. ``income`` hidden on the test split and imputed).

    Args:
        imputed: the imputed labels — one draw (array/Series of N labels), several draws (a list of such arrays or
            a (K, N) array: the share of draws equal to ``positive`` is the score), or probabilities of ``positive``
            (a float array in [0, 1]).
        truth: the true labels, N of them.
        positive: the positive label (e.g. ``">50K"``).
    Returns:
        ``{"auc": ..., "accuracy": ...}``; accuracy thresholds the score at 0.5 (a majority vote over draws).
    """
    from sklearn.metrics import roc_auc_score

    if isinstance(truth, (str, bytes)) or not hasattr(truth, "__len__"):
        raise TypeError(f"truth must be a sequence of labels (N,); got {type(truth).__name__}.")
    labels = np.asarray(pd.Series(truth), dtype=object)
    y = (labels == positive).astype(np.int64)
    if y.size == 0:
        raise ValueError("truth is empty.")
    if not y.any() and not (pd.isna(positive) and pd.isna(labels).any()):
        raise ValueError(
            f"positive={positive!r} is not a label of truth; labels are {sorted(set(map(str, labels)))[:5]}."
        )
    if imputed is None or isinstance(imputed, (str, bytes)):
        raise TypeError(f"imputed must be labels (N,), draws (K, N) or probabilities (N,); got {imputed!r}.")
    if isinstance(imputed, (list, tuple)) and imputed and not np.isscalar(imputed[0]):
        draws = [np.asarray(pd.Series(a), dtype=object) for a in imputed]
        if len({len(a) for a in draws}) != 1:
            raise ValueError(f"every draw in imputed must cover the same rows; got lengths {[len(a) for a in draws]}.")
        imputed = np.stack(draws)
    arr = np.asarray(imputed.to_numpy() if isinstance(imputed, pd.Series) else imputed)
    if arr.size == 0:
        raise ValueError("imputed is empty; expected one label (or probability) per row of truth.")
    if arr.dtype.kind == "f" and arr.ndim == 1:
        score = arr.astype(np.float64)
        if np.isnan(score).any() or score.min() < 0 or score.max() > 1:
            raise ValueError("probabilities in imputed must lie in [0, 1].")
    else:
        draws = arr.reshape(1, -1) if arr.ndim == 1 else arr
        if draws.ndim != 2:
            raise ValueError(f"imputed must be labels (N,), draws (K, N) or probabilities (N,); got shape {arr.shape}.")
        score = (draws.astype(object) == positive).mean(axis=0)
    if score.shape != y.shape:
        raise ValueError(f"imputed covers {score.shape[0]} rows, truth {y.shape[0]}; expected the same rows.")
    auc = float(roc_auc_score(y, score)) if y.min() != y.max() else float("nan")
    return {"auc": auc, "accuracy": float(((score >= 0.5).astype(np.int64) == y).mean())}


# ----------------------------------------------------------------------------------------------------------------
# Repeats
# ----------------------------------------------------------------------------------------------------------------


def _flatten(d: Mapping, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "/"))
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def summarize_seeds(results: Sequence[Mapping]) -> pd.DataFrame:
    """Mean ± std over repeats (one dict of metrics per sampling seed); nested dicts flatten to ``"a/b"`` keys.

    Args:
        results: e.g. ``[{"shape_error": 0.8, "mle": {"auc": 0.91}}, ...]`` — numbers only are summarised.
    Returns:
        DataFrame indexed by metric with columns ``mean``, ``std`` (sample std, ddof = 1; NaN for one repeat), ``n``.
    """
    if isinstance(results, Mapping) or not isinstance(results, Sequence) or not results:
        raise ValueError("results must be a non-empty list of dicts, one per seed.")
    if not all(isinstance(r, Mapping) for r in results):
        raise TypeError(
            f"results must hold dicts of metrics (one per seed); got {[type(r).__name__ for r in results]}."
        )
    flat = [_flatten(r) for r in results]
    keys = list(flat[0])
    for i, f in enumerate(flat[1:], start=1):
        if set(f) != set(keys):
            diff = sorted(set(f) ^ set(keys))
            raise ValueError(f"results[{i}] has different metrics from results[0]: {diff}.")
    values = np.array([[f[k] for k in keys] for f in flat])  # (seeds, metrics)
    std = values.std(axis=0, ddof=1) if len(flat) > 1 else np.full(len(keys), np.nan)
    return pd.DataFrame({"mean": values.mean(axis=0), "std": std, "n": len(flat)}, index=keys)


def format_summary(summary: pd.DataFrame, digits: int = 2) -> dict[str, str]:
    """:func:`summarize_seeds` as strings, ``{"shape_error": "0.81 ± 0.05", ...}``."""
    if not isinstance(summary, pd.DataFrame) or not {"mean", "std"} <= set(summary.columns):
        raise TypeError("summary must be the DataFrame of summarize_seeds (columns mean and std).")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative int; got {digits!r}.")
    return {k: f"{r['mean']:.{digits}f} ± {r['std']:.{digits}f}" for k, r in summary.iterrows()}
