"""One cache for everything the package trains once and reuses (judges, notebook models, fetched data).

The root is ``$DIFFUSE_EDU_CACHE`` or ``~/.cache/diffuse_edu``. A cached item lives in ``<root>/<kind>/<key>/``, where
``key`` is a short hash of the JSON configuration that produced it, so changing any setting trains afresh and never
loads a stale model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["cache_root", "config_key", "cache_dir_for"]


def cache_root() -> Path:
    """``$DIFFUSE_EDU_CACHE`` if set, else ``~/.cache/diffuse_edu`` (not created here)."""
    return Path(os.environ.get("DIFFUSE_EDU_CACHE") or Path.home() / ".cache" / "diffuse_edu")


def config_key(config: dict) -> str:
    """A 12-hex-digit hash of ``config`` (a dict, JSON with sorted keys): equal configurations share a key."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings; got {type(config).__name__}.")
    try:
        text = json.dumps(config, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"config must be JSON-serialisable to be hashed for the cache: {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir_for(kind: str, config: dict | None = None, root: str | Path | None = None) -> Path:
    """The folder of one cached item: ``<root>/<kind>`` or ``<root>/<kind>/<config_key(config)>`` (not created).

    Args:
        kind: a short name such as ``"judges/digits"`` or ``"text"``.
        config: the settings that produced the item; None for items keyed by name only (e.g. fetched data).
        root: default :func:`cache_root`.
    """
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings or None; got {type(config).__name__}.")
    if not isinstance(kind, str) or not kind or kind.startswith("/") or ".." in kind.split("/"):
        raise ValueError(f"kind must be a relative name such as 'judges/digits'; got {kind!r}.")
    base = Path(root) if root is not None else cache_root()
    folder = base / kind
    return folder if config is None else folder / config_key(config)
