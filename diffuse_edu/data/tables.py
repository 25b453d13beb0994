"""Small tables that ship inside registry packages: no network at run time, for FAST mode and tests.

**Palmer penguins** (Horst, Hill & Gorman 2020; data CC0) comes with the ``palmerpenguins`` package (extra
``tabular``): 344 rows, 8 columns of every kind the tabular system handles — three categorical columns
(``species``, ``island``, ``sex``, the last with 11 missing cells), four measurements (two decimals, two whole
numbers stored as floats, each with 2 missing cells) and ``year`` (three values, 2007–2009). We read the package's CSV
ourselves, after checking its SHA-256, so the table cannot change under us with a package update.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io

import pandas as pd

__all__ = ["PENGUINS_SHA256", "PENGUINS_ROWS", "PENGUINS_KINDS", "load_penguins"]

#: SHA-256 of ``palmerpenguins/data/penguins.csv`` in ``palmerpenguins==0.1.6``.
PENGUINS_SHA256 = "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93"
#: Number of rows.
PENGUINS_ROWS = 344
#: Column kinds: what :meth:`diffuse_edu.data.tabular.TableSchema.infer` finds on its own (``year``, an integer
#: column with three values, becomes categorical by the few-distinct-values rule).
PENGUINS_KINDS = {
    "species": "categorical",
    "island": "categorical",
    "bill_length_mm": "numeric",
    "bill_depth_mm": "numeric",
    "flipper_length_mm": "integer",
    "body_mass_g": "integer",
    "sex": "categorical",
    "year": "categorical",
}


def load_penguins() -> pd.DataFrame:
    """The Palmer penguins table (344 rows × 8 columns) from the ``palmerpenguins`` package's CSV.

    Returns:
        DataFrame: text columns ``object`` (str or NaN), measurements ``float64`` (NaN if missing), ``year`` ``int64``.
    Raises:
        ModuleNotFoundError: the package is missing (``pip install 'diffuse_edu[tabular]'``).
        ValueError: the CSV's checksum differs from :data:`PENGUINS_SHA256`.
    """
    try:
        raw = importlib.resources.files("palmerpenguins").joinpath("data/penguins.csv").read_bytes()
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "load_penguins needs the 'palmerpenguins' package: pip install 'diffuse_edu[tabular]'."
        ) from None
    got = hashlib.sha256(raw).hexdigest()
    if got != PENGUINS_SHA256:
        raise ValueError(f"palmerpenguins' penguins.csv: expected sha256 {PENGUINS_SHA256}, got {got}.")
    df = pd.read_csv(io.BytesIO(raw), na_values=["NA"], keep_default_na=False)
    for c in ("species", "island", "sex"):
        col = df[c].astype(object)
        df[c] = col.where(col.notna(), float("nan")).astype(object)
    return df
