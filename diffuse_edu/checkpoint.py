"""Checkpoints without pickle: weights in ``<path>.safetensors``, everything else in ``<path>.json``.

Loading a pickle runs arbitrary code; safetensors holds raw tensors only, and JSON holds the configuration. The round
trip is bit-exact (the bytes of every tensor are stored as they are).

**The model registry.** A network that can rebuild itself has two methods: ``config() -> dict`` (its constructor
arguments, JSON-serialisable) and a classmethod ``from_config(config)``. :func:`save_checkpoint` then records the
class's import path and that dict, and :func:`load_checkpoint` rebuilds the network with no builder function.
Every network in :mod:`diffuse_edu.nets` follows this; for your own class outside the package, call
:func:`register_net` once (a decorator) so it may be rebuilt by name. Networks without ``config()`` still save; load
them by passing a model or a ``build_fn``.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "register_net", "net_spec", "build_net"]

_FORMAT = "diffuse_edu-checkpoint"
_VERSION = 1
_REGISTRY: dict[str, type] = {}


def register_net(cls: type) -> type:
    """Class decorator: allow :func:`build_net` to rebuild ``cls`` from its ``config()`` by name."""
    if not (hasattr(cls, "config") and hasattr(cls, "from_config")):
        raise TypeError(f"{cls.__name__} needs a config() method and a from_config(config) classmethod to register.")
    _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def net_spec(model: nn.Module) -> dict | None:
    """``{"class": import path, "config": model.config()}``, or None if the model has no ``config()``."""
    if not callable(getattr(model, "config", None)):
        return None
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "config": model.config()}


def build_net(spec: dict) -> nn.Module:
    """Rebuild a network from :func:`net_spec`'s dict (package classes or ones added with :func:`register_net`)."""
    name = spec["class"]
    cls = _REGISTRY.get(name)
    if cls is None:
        module, _, qualname = name.rpartition(".")
        # Only import from this package: a checkpoint file must not be able to name arbitrary code to run.
        if not (module == "diffuse_edu" or module.startswith("diffuse_edu.")):
            raise ValueError(
                f"cannot rebuild {name!r}: not a diffuse_edu class; decorate it with register_net "
                "or pass a model / build_fn to load_checkpoint."
            )
        cls = getattr(importlib.import_module(module), qualname, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise ValueError(f"cannot rebuild {name!r}: no such class with from_config().")
    return cls.from_config(spec["config"])


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        model: the network with the saved weights.
        config: the user's config dict as saved.
        ema_model: a copy of the network holding the EMA weights, in eval mode (None if none was saved).
    """

    model: nn.Module
    config: dict
    ema_model: nn.Module | None = None


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _tensors(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    # Contiguous CPU copies: safetensors refuses shared or strided storage (e.g. tied embeddings).
    return {prefix + k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def save_checkpoint(path, model: nn.Module, config: dict | None = None, ema=None) -> tuple[Path, Path]:
    """Save ``model`` (and optionally its EMA weights) to ``<path>.safetensors`` and ``<path>.json``.

    Args:
        path: file stem (a trailing ``.safetensors``/``.json`` is ignored); parent folders are created.
        model: the network.
        config: any JSON-serialisable dict (training settings, schedule name, data info ...).
        ema: an :class:`~diffuse_edu.train.EMA` or a module holding averaged weights, or None.
    Returns:
        The two paths written.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict; got {type(config).__name__}.")
    try:
        json.dumps(config)
    except TypeError as err:
        raise TypeError(f"config must be JSON-serialisable (numbers, strings, lists, dicts): {err}") from None
    st_path, json_path = _paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)

    tensors = _tensors(model.state_dict(), "model.")
    if ema is not None:
        ema_state = ema.state_dict() if hasattr(ema, "state_dict") else None
        if ema_state is None:
            raise TypeError(f"ema must be an EMA or an nn.Module; got {type(ema).__name__}.")
        tensors.update(_tensors(ema_state, "ema."))
    save_file(tensors, str(st_path), metadata={"format": _FORMAT})
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "net": net_spec(model),
        "has_ema": ema is not None,
        "config": config,
    }
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return st_path, json_path


def load_checkpoint(
    path,
    model_or_build: nn.Module | Callable[[dict], nn.Module] | None = None,
    *,
    device: str | torch.device | None = None,
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the same stem given to :func:`save_checkpoint`.
        model_or_build: a model to load the weights into, or ``build_fn(config) -> model``, or None to rebuild the
            network from its saved ``config()`` (see the module docstring).
        device: where to put the model(s); default: leave them where they are (a rebuilt model is on CPU).
    Returns:
        A :class:`Checkpoint` (model, config, ema_model).
    """
    st_path, json_path = _paths(path)
    if not st_path.exists() or not json_path.exists():
        raise FileNotFoundError(f"checkpoint needs both {st_path} and {json_path}.")
    meta = json.loads(json_path.read_text())
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{json_path} is not a diffuse_edu checkpoint (format={meta.get('format')!r}).")
    config = meta.get("config", {})
    if isinstance(model_or_build, nn.Module):
        model = model_or_build
    elif callable(model_or_build):
        model = model_or_build(config)
    elif model_or_build is None:
        if meta.get("net") is None:
            raise ValueError("this checkpoint's network has no config(); pass a model or a build_fn to rebuild it.")
        model = build_net(meta["net"])
    else:
        raise TypeError("model_or_build must be an nn.Module, a callable build_fn(config) or None.")

    tensors = load_file(str(st_path))
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(model_state, strict=True)
    ema_model = None
    if meta.get("has_ema"):
        ema_model = copy.deepcopy(model)
        ema_model.load_state_dict(
            {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}, strict=True
        )
        ema_model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
        if ema_model is not None:
            ema_model.to(device)
    return Checkpoint(model=model, config=config, ema_model=ema_model)
