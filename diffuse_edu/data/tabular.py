"""A table as a multimodal object: column kinds, and encoders that turn a DataFrame into one tensor per column.

Diffuse Everything (Rojas et al. 2025, §5.2) models a mixed-type table with one state space per column: numeric
columns diffuse as Gaussians, categorical columns as masked categories. This module does the bookkeeping on both
sides of the network; it knows nothing of processes or networks.

**Column kinds** (:meth:`TableSchema.infer`, each rule overridable per column):

========================================  ===============  ===================================================
pandas dtype of the column                kind             model columns
========================================  ===============  ===================================================
object, string, category, bool            ``categorical``  one categorical column, vocabulary = seen values
integer with ≤ ``max_int_categories``     ``categorical``  (e.g. ``year`` in 2007–2009)
distinct values
other integers; floats whose values are   ``integer``      one numeric column (rounded and clipped on decode)
all whole numbers
other floats                              ``numeric``      one numeric column
========================================  ===============  ===================================================

**Missing values** are data, handled explicitly: a categorical column's NaN becomes one more category (its last id)
unless ``nan_as_category=False``; a numeric column that had NaN when fitted gets a companion categorical column
``"<name>__missing"`` (ids 0 = observed, 1 = missing) while its value is filled with the median (0 after the
transform) — so a model learns *whether* a value is missing and, separately, its distribution where present.

**Numeric transform: quantile-normal, exactly invertible.** Each numeric column is mapped through a strictly
increasing piecewise-linear function whose knots are the column's distinct values (at most ``max_knots`` of them,
taken at evenly spaced ranks) and whose knot images are normal quantiles of the mid-ranks,
z_k = Φ⁻¹((#{x < v_k} + #{x ≤ v_k}) / 2N). The result is close to N(0, 1) (the Gaussian process's prior) and, being
a piecewise-linear bijection between [v_1, v_K] and [z_1, z_K], inverts exactly: decoding an encoded value returns
it up to the float32 rounding of the tensor (relative error below 1e-5 of the column's range); integer columns are
rounded, so they come back bit-exact. Values outside the fitted range are clipped to it, on the way in and out
(TabDDPM / TabSyn use scikit-learn's ``QuantileTransformer`` the same way; it is not a bijection on ties, this is).

**Integer columns decode through each value's probability interval.** A tied value v_k holds the whole slice
[F(v_k⁻), F(v_k)] of the column's CDF, i.e. the z-interval [Φ⁻¹(#{x < v_k}/N), Φ⁻¹(#{x ≤ v_k}/N)] around its
mid-rank z_k. An integer column decodes every z inside that interval to v_k — the exact discrete quantile function
F⁻¹(Φ(z)) — and interpolates linearly only across the gaps that knot subsampling leaves between intervals. This matters
for spiky columns: Adult's ``capital_gain`` is 0 in 92 % of rows, so 0 owns z < 1.38; interpolating between the
mid-ranks of 0 (z = −0.10) and of the next value, 114 (z = 1.38), instead turned every slightly-off sample into a value
between 0 and 114 that no row holds. Encoding is unchanged (a value seen when fitting maps to its mid-rank, inside its
interval), so seen values still come back bit-exact.

**API**: ``enc = TableEncoder(overrides={"year": "integer"}).fit(train_df)``; ``enc.encode(df)`` → name → tensor
(numeric float32 shape (N, 1), categorical long shape (N, 1) with ids in [0, V)); ``enc.encode_observed(df)`` →
(values, given masks) for imputation; ``enc.decode(tensors)`` → a DataFrame with the original columns, order,
dtypes and category sets; ``enc.columns`` lists (name, kind, vocab size) per model column; ``to_json`` /
``from_json`` save it without pickle. Bad input raises one ``ValueError`` / ``TypeError`` naming the column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtri
from torch import Tensor

__all__ = [
    "KINDS",
    "MISSING_SUFFIX",
    "ColumnSpec",
    "TableSchema",
    "ModelColumn",
    "TableEncoder",
]

#: The three column kinds.
KINDS = ("numeric", "integer", "categorical")
#: Suffix of the indicator column of a numeric column with missing values.
MISSING_SUFFIX = "__missing"
_FORMAT = "diffuse_edu-table-encoder"
#: Share of each half CDF interval of an integer knot left to the values between knots (see :func:`_fit_knots`).
_GAP = 0.01
_VERSION = 2  # 2: integer columns keep their knots' CDF intervals (version 1 still loads)


# ----------------------------------------------------------------------------------------------------------------
# dtype helpers
# ----------------------------------------------------------------------------------------------------------------


_FAMILIES = ("bool", "int", "float", "text")


def _family(dtype) -> str:
    """'bool', 'int', 'float', 'text' (object / string / category) or 'other' (datetimes, complex, ...)."""
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype) or dtype is np.dtype(object):
        return "text"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "other"


def _check_frame(df, what: str = "df") -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame; got {type(df).__name__}.")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {df.shape}); expected at least one row and one column.")
    names = list(df.columns)
    bad = [c for c in names if not isinstance(c, str)]
    if bad:
        raise TypeError(f"{what}: column names must be strings; got {bad[:3]!r}.")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ValueError(f"{what} has duplicate column names: {dup}.")
    return df


def _float_values(s: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing (works for numpy and pandas nullable dtypes)."""
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _json_scalar(v):
    """A category value as a JSON-friendly Python scalar (numpy scalars unwrapped); raises for other types."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (str, bool, int, float)):
        return v
    raise TypeError(f"category values must be str, bool, int or float; got {type(v).__name__} ({v!r}).")


def _sort_key(v):
    # Mixed-type vocabularies (rare) sort by type name first, so the order is total and stable.
    return (type(v).__name__, v)


# ----------------------------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table.

    Attributes:
        name: column name.
        kind: ``"numeric"``, ``"integer"`` or ``"categorical"``.
        dtype: the pandas dtype seen when the schema was made (``str(dtype)``), restored on decode.
    """

    name: str
    kind: str
    dtype: str


@dataclass(frozen=True)
class TableSchema:
    """The ordered columns of a table with their kinds (see the module docstring for the inference rules)."""

    columns: tuple[ColumnSpec, ...]

    def __post_init__(self):
        for c in self.columns:
            if c.kind not in KINDS:
                raise ValueError(f"column {c.name!r}: kind must be one of {KINDS}; got {c.kind!r}.")

    @classmethod
    def infer(
        cls,
        df: pd.DataFrame,
        overrides: Mapping[str, str] | None = None,
        max_int_categories: int = 10,
    ) -> TableSchema:
        """Infer the kind of every column of ``df``.

        Args:
            df: the table (at least one row and one column).
            overrides: column → kind, applied after inference (e.g. ``{"education_num": "categorical"}``).
            max_int_categories: an integer column with at most this many distinct values is categorical.
        Raises:
            ValueError: empty frame, an all-NaN column, an unknown override column or kind.
            TypeError: a column of unsupported dtype (datetime, complex, ...), or an override asking a text column to
                be numeric.
        """
        _check_frame(df)
        if overrides is not None and not isinstance(overrides, Mapping):
            raise TypeError(f"overrides must be a dict column → kind or None; got {type(overrides).__name__}.")
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(df.columns))
        if unknown:
            raise ValueError(f"overrides name columns that are not in the table: {unknown}.")
        for name, kind in overrides.items():
            if kind not in KINDS:
                raise ValueError(f"overrides[{name!r}]: kind must be one of {KINDS}; got {kind!r}.")
        if isinstance(max_int_categories, bool) or not isinstance(max_int_categories, int) or max_int_categories < 0:
            raise ValueError(f"max_int_categories must be a non-negative int; got {max_int_categories!r}.")
        specs = []
        for name in df.columns:
            s = df[name]
            fam = _family(s.dtype)
            if fam == "other":
                raise TypeError(
                    f"column {name!r} has dtype {s.dtype}; supported are numbers, bools, strings and categories."
                )
            if s.isna().all():
                raise ValueError(f"column {name!r} is all NaN; drop it or fill it before fitting.")
            if name in overrides:
                kind = overrides[name]
                if kind != "categorical" and fam in ("text", "bool"):
                    raise TypeError(
                        f"column {name!r} has dtype {s.dtype}; kind {kind!r} needs a numeric (int or float) dtype."
                    )
            elif fam in ("text", "bool"):
                kind = "categorical"
            else:
                vals = _float_values(s)
                vals = vals[~np.isnan(vals)]
                integral = fam == "int" or bool(np.all(np.isfinite(vals) & (vals == np.round(vals))))
                if not integral:
                    kind = "numeric"
                elif np.unique(vals).size <= max_int_categories:
                    kind = "categorical"
                else:
                    kind = "integer"
            specs.append(ColumnSpec(name, kind, str(s.dtype)))
        return cls(tuple(specs))

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self):
        return iter(self.columns)

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r} in the schema; columns are {self.names}.")

    def kinds(self) -> dict[str, str]:
        """Column → kind."""
        return {c.name: c.kind for c in self.columns}

    def sdmetrics_metadata(self) -> dict:
        """The table's metadata in sdmetrics' single-table format: numeric and integer → ``numerical``."""
        sd = {"numeric": "numerical", "integer": "numerical", "categorical": "categorical"}
        return {"columns": {c.name: {"sdtype": sd[c.kind]} for c in self.columns}}

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"columns": [[c.name, c.kind, c.dtype] for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> TableSchema:
        """Inverse of :meth:`to_dict`."""
        cols = d.get("columns") if isinstance(d, Mapping) else None
        if not isinstance(cols, list) or not all(
            isinstance(c, (list, tuple)) and len(c) == 3 and all(isinstance(v, str) for v in c) for c in cols
        ):
            raise ValueError(
                f"not a TableSchema dict (expected {{'columns': [[name, kind, dtype], ...]}}); got {d!r:.80}."
            )
        return cls(tuple(ColumnSpec(*c) for c in cols))


class ModelColumn(NamedTuple):
    """One column as the network sees it: ``kind`` is ``"numeric"`` (vocab_size None) or ``"categorical"``."""

    name: str
    kind: str
    vocab_size: int | None


# ----------------------------------------------------------------------------------------------------------------
# Encoder
# ----------------------------------------------------------------------------------------------------------------


def _fit_knots(x: np.ndarray, max_knots: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Knots of the quantile-normal map from the finite values ``x`` (module docstring).

    Returns:
        (v, z, lo, hi), each shape (K,): the knot values, their mid-rank images and the edges of their CDF intervals
        in z (lo_k ≈ Φ⁻¹(#{x < v_k}/N), hi_k ≈ Φ⁻¹(#{x ≤ v_k}/N), each pulled 1 % towards z_k; the infinite outer
        edges are replaced by z_1 and z_K, since decoding clips there anyway).
    """
    xs = np.sort(x)
    n = xs.size
    uniq = np.unique(xs)
    if uniq.size > max_knots:
        # Evenly spaced ranks, extremes included; np.unique drops the repeats that ties produce.
        uniq = np.unique(xs[np.round(np.linspace(0, n - 1, max_knots)).astype(np.int64)])
    if uniq.size == 1:
        return uniq, np.zeros(1), np.zeros(1), np.zeros(1)
    below = np.searchsorted(xs, uniq, side="left")  # #{x < v}
    upto = np.searchsorted(xs, uniq, side="right")  # #{x <= v}
    # Mid-rank CDF: strictly increasing over distinct seen values and inside (0, 1), so Φ⁻¹ is finite.
    z = ndtri((below + upto) / (2.0 * n))
    lo, hi = ndtri(below / n), ndtri(upto / n)
    lo[0], hi[-1] = z[0], z[-1]  # Φ⁻¹(0) = −∞ and Φ⁻¹(1) = +∞: clipped on decoding anyway
    # Keep a sliver (_GAP) of each half-interval free, so that values never seen between two adjacent knots still
    # have somewhere to go and come back exactly (encode stays injective on the fitted range).
    lo, hi = z - (1 - _GAP) * (z - lo), z + (1 - _GAP) * (hi - z)
    return uniq, z, lo, hi


def _interval_encode(x: np.ndarray, kx: np.ndarray, kz: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integer-column encoding: a knot value → its mid-rank z_k; a value between knots v_k < x < v_(k+1) → linearly
    across the gap [hi_k, lo_(k+1)] (empty when no value lies between them: then x lands on an edge); clipped outside.
    """
    k = np.clip(np.searchsorted(kx, x, side="left"), 0, kx.size - 1)  # kx[k] >= x unless x is beyond the last
    prev = np.maximum(k - 1, 0)
    span = kx[k] - kx[prev]
    frac = np.where(span > 0, (x - kx[prev]) / np.where(span > 0, span, 1.0), 0.0)
    z = hi[prev] + frac * (lo[k] - hi[prev])
    z = np.where(kx[k] == x, kz[k], z)
    return np.where(x <= kx[0], kz[0], np.where(x >= kx[-1], kz[-1], z))


def _interval_decode(z: np.ndarray, kx: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integer-column decoding: z inside a knot's CDF interval [lo_k, hi_k] → v_k (the discrete quantile function
    F⁻¹(Φ(z))); z in a gap (hi_(k−1), lo_k) → linearly between v_(k−1) and v_k; clipped outside."""
    k = np.clip(np.searchsorted(hi, z, side="left"), 0, kx.size - 1)  # the first interval whose top is >= z
    prev = np.maximum(k - 1, 0)
    gap = lo[k] - hi[prev]
    frac = np.clip((z - hi[prev]) / np.where(gap > 0, gap, 1.0), 0.0, 1.0)
    inside = (z >= lo[k]) | (k == 0) | (gap <= 0)
    return np.where(inside, kx[k], kx[prev] + frac * (kx[k] - kx[prev]))


def _scalar_ids(values: np.ndarray, vocab: list) -> np.ndarray:
    """Codes of ``values`` in ``vocab`` (non-NaN categories); -1 for NaN and for values not in ``vocab``."""
    ids = pd.Index(vocab, dtype=object).get_indexer(pd.Index(values, dtype=object)).astype(np.int64)
    ids[pd.isna(values)] = -1  # NaN is never a vocabulary entry (the NaN category is handled by the caller)
    return ids


class TableEncoder:
    """Turns a DataFrame into one tensor per model column and back (module docstring).

    Args:
        schema: column kinds; inferred from the fitted frame when None (with ``overrides`` and ``max_int_categories``).
        overrides: column → kind, for inference.
        nan_as_category: a categorical NaN is its own category (True) or a missing cell to impute (False: then
            :meth:`encode` refuses NaN in that column and :meth:`encode_observed` marks it not given).
        max_int_categories: see :meth:`TableSchema.infer`.
        max_knots: most knots of a numeric column's quantile-normal map.
    """

    def __init__(
        self,
        schema: TableSchema | None = None,
        overrides: Mapping[str, str] | None = None,
        *,
        nan_as_category: bool = True,
        max_int_categories: int = 10,
        max_knots: int = 1000,
    ):
        if schema is not None and not isinstance(schema, TableSchema):
            raise TypeError(f"schema must be a TableSchema or None; got {type(schema).__name__}.")
        if schema is not None and overrides:
            raise ValueError("pass either a schema or overrides (overrides only steer inference), not both.")
        if isinstance(max_knots, bool) or not isinstance(max_knots, int) or max_knots < 2:
            raise ValueError(f"max_knots must be an int >= 2; got {max_knots!r}.")
        if overrides is not None and not isinstance(overrides, Mapping):
            raise TypeError(f"overrides must be a dict column → kind or None; got {type(overrides).__name__}.")
        for name, kind in dict(overrides or {}).items():
            if kind not in KINDS:
                raise ValueError(f"overrides[{name!r}]: kind must be one of {KINDS}; got {kind!r}.")
        if not isinstance(nan_as_category, bool):
            raise TypeError(f"nan_as_category must be a bool; got {nan_as_category!r}.")  # "no" used to mean True
        if isinstance(max_int_categories, bool) or not isinstance(max_int_categories, int) or max_int_categories < 0:
            raise ValueError(f"max_int_categories must be a non-negative int; got {max_int_categories!r}.")
        self._schema_arg = schema
        self.schema = schema  # the schema in use: given, or inferred by fit()
        self.overrides = dict(overrides or {})
        self.nan_as_category = bool(nan_as_category)
        self.max_int_categories = max_int_categories
        self.max_knots = max_knots
        self._state: dict[str, dict] | None = None

    # ---------------------------------------------------------------- fitting

    def fit(self, df: pd.DataFrame) -> TableEncoder:
        """Learn vocabularies and quantile maps from ``df`` (the training table); returns ``self``."""
        _check_frame(df)
        # Infer afresh on every fit unless a schema was given: refitting on another table must not reuse old kinds.
        self.schema = self._schema_arg or TableSchema.infer(df, self.overrides, self.max_int_categories)
        missing = [n for n in self.schema.names if n not in df.columns]
        if missing:
            raise ValueError(f"df lacks the schema's columns {missing}.")
        state = {}
        for spec in self.schema:
            s = df[spec.name]
            if s.isna().all():
                raise ValueError(f"column {spec.name!r} is all NaN; drop it or fill it before fitting.")
            fam = _family(s.dtype)
            if fam == "other":
                raise TypeError(f"column {spec.name!r} has unsupported dtype {s.dtype}.")
            st: dict[str, Any] = {"dtype": str(s.dtype), "family": fam}
            if spec.kind == "categorical":
                st.update(self._fit_categorical(spec.name, s))
            else:
                if fam not in ("int", "float"):
                    raise TypeError(
                        f"column {spec.name!r} has dtype {s.dtype}; kind {spec.kind!r} needs a numeric dtype."
                    )
                x = _float_values(s)
                finite = np.isfinite(x)
                if (~finite & ~np.isnan(x)).any():
                    raise ValueError(f"column {spec.name!r} holds infinite values; expected finite numbers or NaN.")
                knots_x, knots_z, knots_lo, knots_hi = _fit_knots(x[finite], self.max_knots)
                st.update(
                    knots_x=knots_x.tolist(),
                    knots_z=knots_z.tolist(),
                    has_missing=bool(np.isnan(x).any()),
                )
                if spec.kind == "integer":  # decoded through each value's CDF interval (module docstring)
                    st.update(knots_lo=knots_lo.tolist(), knots_hi=knots_hi.tolist())
            state[spec.name] = st
        self._state = state
        return self

    def _fit_categorical(self, name: str, s: pd.Series) -> dict:
        if isinstance(s.dtype, pd.CategoricalDtype):
            # Keep declared categories, used or not, in their declared order: decode restores the exact dtype.
            cats = [_json_scalar(v) for v in s.cat.categories]
            extra = {"categories_dtype": cats, "ordered": bool(s.cat.ordered)}
        else:
            vals = s[s.notna()].to_numpy(dtype=object)
            try:
                cats = sorted({_json_scalar(v) for v in vals}, key=_sort_key)
            except TypeError as err:
                raise TypeError(f"column {name!r}: {err}") from None
            extra = {}
        has_nan = bool(s.isna().any())
        return {"vocab": cats, "nan_category": has_nan and self.nan_as_category, **extra}

    def _require_fit(self) -> dict[str, dict]:
        if self._state is None:
            raise RuntimeError("this TableEncoder is not fitted yet; call fit(df) first.")
        return self._state

    # ---------------------------------------------------------------- description

    @property
    def columns(self) -> tuple[ModelColumn, ...]:
        """The model columns in order: (name, kind ``numeric``/``categorical``, vocabulary size or None)."""
        state = self._require_fit()
        out = []
        for spec in self.schema:
            st = state[spec.name]
            if spec.kind == "categorical":
                out.append(ModelColumn(spec.name, "categorical", len(st["vocab"]) + int(st["nan_category"])))
            else:
                out.append(ModelColumn(spec.name, "numeric", None))
                if st["has_missing"]:
                    out.append(ModelColumn(spec.name + MISSING_SUFFIX, "categorical", 2))
        return tuple(out)

    @property
    def numeric_names(self) -> list[str]:
        """Names of the numeric model columns (constructor argument of a column network)."""
        return [c.name for c in self.columns if c.kind == "numeric"]

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """Categorical model column → vocabulary size V (ids in [0, V); a masked process adds its mask id V)."""
        return {c.name: c.vocab_size for c in self.columns if c.kind == "categorical"}

    def groups(self) -> dict[str, list[str]]:
        """Model columns grouped by kind, ``{"numeric": [...], "categorical": [...]}`` (for grouped clocks)."""
        return {
            "numeric": self.numeric_names,
            "categorical": list(self.vocab_sizes),
        }

    def vocab(self, name: str) -> list:
        """Categories of a categorical model column by id (NaN, if a category, is last; indicators: [False, True])."""
        state = self._require_fit()
        if name.endswith(MISSING_SUFFIX) and name[: -len(MISSING_SUFFIX)] in state:
            src = state[name[: -len(MISSING_SUFFIX)]]
            if src.get("has_missing"):
                return [False, True]
        st = state.get(name)
        if st is None or "vocab" not in st:
            raise KeyError(f"{name!r} is not a categorical model column; those are {list(self.vocab_sizes)}.")
        return list(st["vocab"]) + ([float("nan")] if st["nan_category"] else [])

    def source_of(self, name: str) -> str:
        """The table column a model column comes from (``"age__missing"`` → ``"age"``)."""
        for c in self.columns:
            if c.name == name:
                return name if name in self._state else name[: -len(MISSING_SUFFIX)]
        raise KeyError(f"no model column {name!r}; model columns are {[c.name for c in self.columns]}.")

    def __repr__(self) -> str:
        if self._state is None:
            return "TableEncoder(not fitted)"
        kinds = ", ".join(f"{c.name}:{c.kind}" for c in self.schema)
        return f"TableEncoder({len(self.schema)} columns → {len(self.columns)} model columns; {kinds})"

    # ---------------------------------------------------------------- encoding

    def _check_columns(self, df: pd.DataFrame, allow_subset: bool) -> None:
        names = self.schema.names
        extra = [c for c in df.columns if c not in names]
        if extra:
            raise ValueError(f"df has columns the encoder was not fitted on: {extra}; expected a subset of {names}.")
        absent = [c for c in names if c not in df.columns]
        if absent and not allow_subset:
            raise ValueError(f"df lacks the columns {absent}; encode() needs all of {names}.")

    def _check_dtype(self, name: str, s: pd.Series) -> str:
        """The column's family, after checking it agrees with the fitted one (int and float count as one)."""
        st = self._state[name]
        fam = _family(s.dtype)
        fitted = st["family"]
        numbers = {"int", "float"}
        same = fam == fitted or (fam in numbers and fitted in numbers)
        # A column that is entirely NaN arrives as float64 whatever its type: allowed (nothing to compare).
        if not same and not s.isna().all():
            raise TypeError(
                f"column {name!r} has dtype {s.dtype} but the encoder was fitted on dtype {st['dtype']}; "
                "cast it back before encoding."
            )
        return fam

    def encode(self, df: pd.DataFrame) -> dict[str, Tensor]:
        """Encode a complete table (its NaN are data: categories or missing indicators).

        Args:
            df: a table with the fitted columns (any order).
        Returns:
            model column → tensor shape (N, 1): float32 for numeric columns, long ids in [0, V) for categorical ones.
        Raises:
            ValueError: missing / extra columns, unseen categories, infinite numbers, or NaN in a column that cannot
                hold it (numeric without NaN at fit time, categorical with ``nan_as_category=False``).
            TypeError: a column whose dtype differs from the fitted one.
        """
        self._require_fit()
        _check_frame(df)
        self._check_columns(df, allow_subset=False)
        values, _ = self._encode(df, observed=None, strict=True)
        return values

    def encode_observed(
        self, df: pd.DataFrame, observed: pd.DataFrame | np.ndarray | None = None
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Encode a table with cells to impute: values plus a per-cell "given" mask.

        A cell is given when ``observed`` says so (default: where ``df`` is not NaN); a column absent from ``df`` is
        not given at all. An observed NaN means "known to be missing": it is given as the NaN category, or, for a
        numeric column, as indicator 1 with the fill value 0 (exactly what training saw for missing rows).
        Not-given cells hold the placeholder 0 (numeric 0.0, id 0); a sampler must never read them.

        Args:
            df: rows to impute, with all or some of the fitted columns.
            observed: bool DataFrame (or array) of ``df``'s shape, True where a cell is given.
        Returns:
            ``(values, given)``: model column → tensor (N, 1) as in :meth:`encode`, and model column → bool (N, 1).
        """
        self._require_fit()
        _check_frame(df)
        self._check_columns(df, allow_subset=True)
        if observed is None:
            obs = df.notna()
        else:
            arr = observed.to_numpy() if isinstance(observed, pd.DataFrame) else np.asarray(observed)
            if isinstance(observed, pd.DataFrame) and list(observed.columns) != list(df.columns):
                raise ValueError("observed must have the same columns as df, in the same order.")
            if arr.shape != df.shape or arr.dtype != bool:
                raise ValueError(
                    f"observed must be a bool array of df's shape {df.shape}; got {arr.dtype} {arr.shape}."
                )
            obs = pd.DataFrame(arr, columns=df.columns, index=df.index)
        return self._encode(df, observed=obs, strict=False)

    def _encode(self, df: pd.DataFrame, observed: pd.DataFrame | None, strict: bool):
        n = len(df)
        values: dict[str, Tensor] = {}
        given: dict[str, Tensor] = {}
        for spec in self.schema:
            st = self._state[spec.name]
            name = spec.name
            if name not in df.columns:
                for mc in self._model_names(spec):
                    kind_float = mc == name and spec.kind != "categorical"
                    values[mc] = torch.zeros(n, 1, dtype=torch.float32 if kind_float else torch.long)
                    given[mc] = torch.zeros(n, 1, dtype=torch.bool)
                continue
            s = df[name]
            self._check_dtype(name, s)
            isnan = s.isna().to_numpy()
            obs = np.ones(n, dtype=bool) if observed is None else observed[name].to_numpy(dtype=bool)
            if spec.kind == "categorical":
                ids, giv = self._encode_categorical(name, st, s, isnan, obs, strict)
                values[name] = torch.from_numpy(ids).view(n, 1)
                given[name] = torch.from_numpy(giv).view(n, 1)
            else:
                z, zgiv, ind, indgiv = self._encode_numeric(name, spec.kind, st, s, isnan, obs, strict)
                values[name] = torch.from_numpy(z).view(n, 1)
                given[name] = torch.from_numpy(zgiv).view(n, 1)
                if st["has_missing"]:
                    values[name + MISSING_SUFFIX] = torch.from_numpy(ind).view(n, 1)
                    given[name + MISSING_SUFFIX] = torch.from_numpy(indgiv).view(n, 1)
        return values, given

    def _model_names(self, spec: ColumnSpec) -> list[str]:
        st = self._state[spec.name]
        if spec.kind != "categorical" and st["has_missing"]:
            return [spec.name, spec.name + MISSING_SUFFIX]
        return [spec.name]

    def _encode_categorical(self, name, st, s, isnan, obs, strict):
        vocab = st["vocab"]
        ids = _scalar_ids(s.to_numpy(dtype=object), vocab)
        unseen = (ids < 0) & ~isnan & obs
        if unseen.any():
            bad = sorted({_json_scalar(v) for v in s[unseen].to_numpy(dtype=object)}, key=_sort_key)
            raise ValueError(
                f"column {name!r} holds categories unseen when fitting: {bad[:5]}"
                f"{' ...' if len(bad) > 5 else ''} (known: {vocab[:8]}{' ...' if len(vocab) > 8 else ''})."
            )
        nan_obs = isnan & obs
        if nan_obs.any():
            if not st["nan_category"]:
                why = "nan_as_category=False" if self.nan_as_category is False else "it had no NaN when fitted"
                hint = "use encode_observed() to impute them" if strict else "leave them not observed to impute them"
                raise ValueError(
                    f"column {name!r} holds {int(nan_obs.sum())} NaN but NaN is not a category ({why}); {hint}."
                )
            ids[nan_obs] = len(vocab)
        giv = obs.copy()
        ids[~giv] = 0  # placeholder
        return ids, giv

    def _encode_numeric(self, name, kind, st, s, isnan, obs, strict):
        x = _float_values(s)
        bad = ~np.isfinite(x) & ~isnan & obs
        if bad.any():
            raise ValueError(f"column {name!r} holds {int(bad.sum())} infinite values; expected finite numbers or NaN.")
        nan_obs = isnan & obs
        if nan_obs.any() and not st["has_missing"]:
            hint = "use encode_observed() to impute them" if strict else "leave them not observed"
            raise ValueError(
                f"column {name!r} holds {int(nan_obs.sum())} NaN but had none when the encoder was fitted, so it has "
                f"no missing indicator; {hint}."
            )
        kx, kz = np.asarray(st["knots_x"]), np.asarray(st["knots_z"])
        xf = np.where(np.isfinite(x), x, kx[0])
        if "knots_lo" in st:  # an integer column: values between knots go across the gaps between CDF intervals
            z = _interval_encode(xf, kx, kz, np.asarray(st["knots_lo"]), np.asarray(st["knots_hi"]))
        else:
            # np.interp clips outside [v_1, v_K]: out-of-range values map to the end quantiles.
            z = np.interp(xf, kx, kz)
        # Missing (or not given) cells: the median's image, 0 (exactly what training saw for missing rows).
        z = np.where(np.isfinite(x) & obs, z, 0.0).astype(np.float32)
        zgiv = obs.copy()  # an observed NaN is given as its fill value, as in training
        ind = isnan.astype(np.int64)
        indgiv = obs.copy()
        ind[~indgiv] = 0
        return z, zgiv, ind, indgiv

    # ---------------------------------------------------------------- decoding

    def decode(self, values: Mapping[str, Tensor | np.ndarray]) -> pd.DataFrame:
        """Tensors (e.g. samples) back to a DataFrame with the fitted columns, order, dtypes and categories.

        Args:
            values: model column → shape (N, 1) or (N,): floats for numeric columns, integer ids in [0, V) for
                categorical ones (CPU or GPU tensors, or numpy arrays).
        Returns:
            DataFrame of N rows; numeric values clipped to the fitted range, integer columns rounded, NaN where an
            indicator says missing or the NaN category was drawn.
        """
        state = self._require_fit()
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of model column → tensor; got {type(values).__name__}.")
        cols = self.columns
        want = [c.name for c in cols]
        missing, extra = [c for c in want if c not in values], [c for c in values if c not in want]
        if missing or extra:
            raise ValueError(f"decode needs exactly the model columns {want}; missing {missing}, unexpected {extra}.")
        arrays, n = {}, None
        for c in cols:
            v = values[c.name]
            a = v.detach().cpu().numpy() if isinstance(v, Tensor) else np.asarray(v)
            if a.ndim == 2 and a.shape[1] == 1:
                a = a[:, 0]
            if a.ndim != 1:
                raise ValueError(f"values[{c.name!r}] must have shape (N, 1) or (N,); got {a.shape}.")
            n = a.shape[0] if n is None else n
            if a.shape[0] != n:
                raise ValueError(f"values[{c.name!r}] has {a.shape[0]} rows; other columns have {n}.")
            if c.kind == "numeric":
                if a.dtype.kind != "f":
                    raise TypeError(f"values[{c.name!r}] must be floating point (numeric column); got {a.dtype}.")
                a = a.astype(np.float64)
                if not np.isfinite(a).all():
                    raise ValueError(f"values[{c.name!r}] holds NaN or infinite values.")
            else:
                if a.dtype.kind not in "iu":
                    raise TypeError(f"values[{c.name!r}] must hold integer ids (categorical column); got {a.dtype}.")
                if a.size and (a.min() < 0 or a.max() >= c.vocab_size):
                    raise ValueError(
                        f"values[{c.name!r}] holds ids in [{a.min()}, {a.max()}]; expected [0, {c.vocab_size}) "
                        "(a mask id left in a sample?)."
                    )
            arrays[c.name] = a
        out = {}
        for spec in self.schema:
            st = state[spec.name]
            if spec.kind == "categorical":
                out[spec.name] = self._decode_categorical(st, arrays[spec.name])
            else:
                if "knots_lo" in st:
                    kx, lo, hi = (np.asarray(st[k]) for k in ("knots_x", "knots_lo", "knots_hi"))
                    x = _interval_decode(arrays[spec.name], kx, lo, hi)
                else:
                    x = np.interp(arrays[spec.name], st["knots_z"], st["knots_x"])
                if spec.kind == "integer":
                    x = np.rint(x)
                if st["has_missing"]:
                    x = np.where(arrays[spec.name + MISSING_SUFFIX] == 1, np.nan, x)
                out[spec.name] = _restore_numeric(x, st["dtype"])
        return pd.DataFrame(out, columns=self.schema.names)

    def _decode_categorical(self, st: dict, ids: np.ndarray) -> pd.Series:
        table = np.empty(len(st["vocab"]) + int(st["nan_category"]), dtype=object)
        table[: len(st["vocab"])] = st["vocab"]
        if st["nan_category"]:
            table[-1] = np.nan
        vals = table[ids]
        if "categories_dtype" in st:
            return pd.Series(pd.Categorical(vals, categories=st["categories_dtype"], ordered=st["ordered"]))
        has_nan = bool(st["nan_category"]) and bool((ids == len(st["vocab"])).any())
        fam = st["family"]
        if fam == "text":
            if st["dtype"] == "object":
                return pd.Series(vals, dtype=object)
            try:  # pandas string dtypes ("string", pandas 3's "str") keep NaN as their missing value
                return pd.Series(vals, dtype=st["dtype"])
            except TypeError:
                return pd.Series(vals, dtype=object)
        if fam == "bool":
            if st["dtype"] == "boolean":  # pandas' nullable bool holds NaN as <NA>
                return pd.Series(vals, dtype="boolean")
            return pd.Series(vals, dtype=object if has_nan else bool)
        # numbers used as categories (e.g. a year): restore the number dtype, float if NaN must fit
        return pd.Series(_restore_numeric(vals.astype(np.float64), st["dtype"]))

    # ---------------------------------------------------------------- saving

    def to_dict(self) -> dict:
        """JSON-serialisable state (knots as exact Python floats, so a JSON round trip is bit-exact)."""
        state = self._require_fit()
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "schema": self.schema.to_dict(),
            "nan_as_category": self.nan_as_category,
            "max_int_categories": self.max_int_categories,
            "max_knots": self.max_knots,
            "state": state,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TableEncoder:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping):
            raise TypeError(f"a TableEncoder state is a dict (from to_dict()); got {type(d).__name__}.")
        missing = sorted({"schema", "state", "nan_as_category", "max_int_categories", "max_knots"} - set(d))
        if d.get("format") == _FORMAT and missing:
            raise ValueError(f"this TableEncoder state lacks {missing} (an edited or truncated file?).")
        if d.get("format") != _FORMAT:
            raise ValueError(f"not a TableEncoder state (format {d.get('format')!r}).")
        if d.get("version") not in (1, _VERSION):
            raise ValueError(f"TableEncoder state version {d.get('version')!r}; this code reads versions 1–{_VERSION}.")
        enc = cls(
            TableSchema.from_dict(d["schema"]),  # the fitted schema becomes the given one: a refit keeps the kinds
            nan_as_category=d["nan_as_category"],
            max_int_categories=d["max_int_categories"],
            max_knots=d["max_knots"],
        )
        enc._state = _checked_state(enc.schema, d["state"])
        return enc

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> TableEncoder:
        """Rebuild from :meth:`to_json`."""
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"text must be the JSON string of to_json(); got {type(text).__name__}.")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not a TableEncoder state: the text is not JSON ({err}).") from None
        return cls.from_dict(d)

    def sdmetrics_metadata(self) -> dict:
        """The table's metadata in sdmetrics' single-table format (see :meth:`TableSchema.sdmetrics_metadata`)."""
        self._require_fit()
        return self.schema.sdmetrics_metadata()


def _checked_state(schema: TableSchema, state) -> dict[str, dict]:
    """A saved per-column state, checked entry by entry against ``schema`` (one clear error, naming the column)."""
    if not isinstance(state, Mapping) or set(state) != set(schema.names):
        got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"the saved state must hold exactly the schema's columns {schema.names}; got {got}.")

    def numbers(v) -> bool:
        return isinstance(v, list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v
        )

    out = {}
    for spec in schema:
        st = state[spec.name]
        ok = isinstance(st, Mapping) and isinstance(st.get("dtype"), str) and st.get("family") in _FAMILIES
        if ok and spec.kind == "categorical":
            ok = isinstance(st.get("vocab"), list) and isinstance(st.get("nan_category"), bool)
        elif ok:
            kx, kz = st.get("knots_x"), st.get("knots_z")
            ok = numbers(kx) and numbers(kz) and len(kx) == len(kz) >= 1 and isinstance(st.get("has_missing"), bool)
            ok = ok and all(a < b for a, b in zip(kx, kx[1:], strict=False))
            if ok and "knots_lo" in st:
                ok = numbers(st["knots_lo"]) and numbers(st.get("knots_hi")) and len(st["knots_lo"]) == len(kx)
        if not ok:
            raise ValueError(f"the saved state of column {spec.name!r} ({spec.kind}) is malformed (an edited file?).")
        out[spec.name] = dict(st)
    return out


def _restore_numeric(x: np.ndarray, dtype: str) -> np.ndarray | pd.arrays.IntegerArray:
    """Float64 values (NaN for missing) in the column's fitted dtype: ints stay ints unless NaN must fit."""
    dt = pd.api.types.pandas_dtype(dtype)
    has_nan = bool(np.isnan(x).any())
    if isinstance(dt, np.dtype):
        if dt.kind in "iu":
            return x.astype(np.float64) if has_nan else x.astype(dt)
        return x.astype(dt)
    # pandas extension dtypes (Int64, Float64): they hold NaN as <NA>
    return pd.array(np.where(np.isnan(x), None, x).tolist() if has_nan else x, dtype=dt)
