"""Trained recipe models in the one cache (:mod:`diffuse_edu.cache`): ``<root>/<kind>/<config hash>/<name>``.

A recipe keys each trained network by the JSON configuration that produced it, so a notebook and its benchmark share
a model when they ask for the same one, and any change of setting trains afresh. Each entry is a checkpoint
(safetensors + JSON, never pickle) holding the last and the EMA weights, the recipe's configuration, and what the
training measured (loss curve, seconds), so a table built from a cached model still reports its training cost.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..cache import cache_dir_for
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["model_stem", "load_trained", "save_trained"]


def model_stem(kind: str, config: dict, name: str = "model", root: str | Path | None = None) -> Path:
    """The checkpoint stem of one cached model: ``<root>/<kind>/<config_key(config)>/<name>``."""
    return cache_dir_for(kind, config, root=root) / name


def load_trained(
    kind: str, config: dict, name: str = "model", root: str | Path | None = None, device=None
) -> tuple[nn.Module, dict] | None:
    """The cached EMA network (eval mode, no gradients) and its saved ``info``, or None if absent or damaged.

    An entry whose stored configuration differs from ``config`` (a hash collision, or a hand-edited file) counts as
    absent.
    """
    stem = model_stem(kind, config, name, root)
    if not stem.with_name(stem.name + ".json").exists():
        return None
    try:
        ck = load_checkpoint(stem, device=device)
    except (OSError, CheckpointError, ValueError, RuntimeError, KeyError):
        return None  # a damaged entry: the caller trains again and overwrites it
    saved = ck.config or {}
    if saved.get("recipe") != config or ck.ema_model is None:
        return None
    return ck.ema_model.eval().requires_grad_(False), dict(saved.get("info") or {})


def save_trained(
    kind: str,
    config: dict,
    model: nn.Module,
    ema_model: nn.Module,
    info: dict,
    name: str = "model",
    root: str | Path | None = None,
) -> Path:
    """Save ``model`` with its EMA copy, ``config`` and JSON-serialisable ``info``; returns the stem."""
    stem = model_stem(kind, config, name, root)
    save_checkpoint(stem, model, {"recipe": config, "info": info}, ema=ema_model)
    return stem
