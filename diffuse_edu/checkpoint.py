"""Checkpoints without pickle: tensors in ``<path>.safetensors``, everything else in ``<path>.json``.

Loading a pickle runs arbitrary code; safetensors holds raw tensors only, and JSON holds the configuration. The round
trip is bit-exact (the bytes of every tensor are stored as they are).

**Integrity.** The JSON records the sha256 and size of the weight file, and :func:`load_checkpoint` checks both before
reading a tensor: a flipped byte or a truncated file is refused with a :class:`CheckpointError` that names the file.
Both files are written atomically (to a temporary name in the same folder, flushed to disk, then renamed over the
final name), the weights first and the JSON last. The JSON is the commit point: a checkpoint exists once its JSON
does, so a run killed mid-write leaves the previous checkpoint of a folder intact (:func:`latest_checkpoint` only sees
committed ones).

**Training state.** ``save_checkpoint(..., state=...)`` also stores a nested dict of tensors and JSON values (the
optimiser, the step, every RNG state, the data stream's position: what :func:`diffuse_edu.train.train` needs to resume
exactly). Its tensors go to the safetensors file under ``state/...`` keys, the rest to the JSON, so a training
checkpoint is still pickle-free and still loads as a plain model checkpoint.

**The model registry.** A network that can rebuild itself has two methods: ``config() -> dict`` (its constructor
arguments, JSON-serialisable) and a classmethod ``from_config(config)``. :func:`save_checkpoint` then records the
class's import path and that dict, and :func:`load_checkpoint` rebuilds the network with no builder function.
Every network in :mod:`diffuse_edu.nets` follows this; for your own class outside the package, call
:func:`register_net` once (a decorator) so it may be rebuilt by name. Networks without ``config()`` still save; load
them by passing a model or a ``build_fn``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file
from torch import nn

from ._checks import check_device

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "checkpoint_path",
    "Checkpoint",
    "CheckpointError",
    "register_net",
    "net_spec",
    "build_net",
]

_FORMAT = "diffuse_edu-checkpoint"
_VERSION = 2  # 1: no sha256, no training state (still loads)
_REGISTRY: dict[str, type] = {}
_STEP_NAME = re.compile(r"^step_(\d+)\.json$")


class CheckpointError(ValueError):
    """A file that is not a diffuse_edu checkpoint, or one that is corrupt, truncated or incomplete."""


def register_net(cls: type) -> type:
    """Class decorator: allow :func:`build_net` to rebuild ``cls`` from its ``config()`` by name."""
    if not isinstance(cls, type):
        raise TypeError(f"register_net decorates a class; got {type(cls).__name__}.")
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
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str) or "config" not in spec:
        raise ValueError(f"spec must be a dict with 'class' (str) and 'config' from net_spec(); got {spec!r}.")
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
    if not isinstance(spec["config"], dict):
        raise ValueError(
            f"cannot rebuild {name!r}: its config must be a dict of constructor arguments; got {spec['config']!r}."
        )
    try:
        return cls.from_config(spec["config"])
    except TypeError as err:  # an unknown or missing constructor argument (an edited JSON?)
        raise ValueError(f"cannot rebuild {name!r} from its saved config: {err}") from None


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        model: the network with the saved weights.
        config: the user's config dict as saved.
        ema_model: a copy of the network holding the EMA weights, in eval mode (None if none was saved).
        state: the training state saved with ``state=`` (tensors restored in place), or None.
        ema: ``{"decay", "warmup", "num_updates"}`` when an :class:`~diffuse_edu.train.EMA` was saved, else None.
        path: the checkpoint's stem (``<path>.safetensors`` / ``<path>.json``).
    """

    model: nn.Module
    config: dict
    ema_model: nn.Module | None = None
    state: dict | None = None
    ema: dict | None = None
    path: Path | None = None


# ------------------------------------------------------------------------------------------------------------- paths
def _stem(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (a file stem); got {type(path).__name__}.")
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p


def _paths(path) -> tuple[Path, Path]:
    p = _stem(path)
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def checkpoint_path(folder, step: int) -> Path:
    """The stem of the training checkpoint for ``step`` in ``folder``: ``folder/step_00000100``."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int; got {step!r}.")
    return Path(folder) / f"step_{step:08d}"


def latest_checkpoint(folder) -> Path | None:
    """The stem of the newest committed training checkpoint (``step_*.json``) in ``folder``, or None if none.

    Only the JSON (written last) counts, so a checkpoint whose write was interrupted is never returned.
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a str or os.PathLike; got {type(folder).__name__}.")
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = [int(m.group(1)) for p in folder.iterdir() if (m := _STEP_NAME.match(p.name))]
    return checkpoint_path(folder, max(steps)) if steps else None


def _step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, stem) of every committed step checkpoint in ``folder``, oldest first."""
    out = [
        (int(m.group(1)), folder / p.name[: -len(".json")]) for p in folder.iterdir() if (m := _STEP_NAME.match(p.name))
    ]
    return sorted(out)


def prune_checkpoints(folder, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest step checkpoints of ``folder`` (JSON first: uncommit, then the weights)."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be a positive int; got {keep!r}.")
    removed = []
    for _, stem in _step_checkpoints(Path(folder))[:-keep]:
        st, js = _paths(stem)
        js.unlink(missing_ok=True)
        st.unlink(missing_ok=True)
        removed.append(stem)
    return removed


def remove_stale_temporaries(folder) -> None:
    """Remove temporary files left by writes that were killed (``.<name>.tmp-<pid>``) in ``folder``."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and ".tmp-" in p.name:
                p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------------ atomic files
def _fsync_dir(folder: Path) -> None:
    # Make the renames themselves durable (POSIX); not possible on every platform, harmless to skip there.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256_of(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> dict:
    """Write ``tensors`` to ``path`` atomically; return ``{"sha256", "bytes"}`` of the file."""
    tmp = _temporary(path)
    try:
        save_file(tensors, str(tmp), metadata={"format": _FORMAT})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest, size = _sha256_of(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"sha256": digest, "bytes": size}


def _write_text(path: Path, text: str) -> None:
    tmp = _temporary(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------- nested state <-> JSON + tensors
def _split_state(obj, key: str, tensors: dict[str, torch.Tensor]):
    """JSON skeleton of ``obj``; its tensors go to ``tensors[key...]`` (dict keys, tuples and ints kept exactly)."""
    if isinstance(obj, torch.Tensor):
        if key in tensors:  # e.g. {"a/b": x} next to {"a": {"b": y}}: keep both under distinct names
            key = f"{key}#{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _split_state(v, f"{key}/{k}", tensors) for k, v in obj.items()}
        # Non-string keys (an optimiser's parameter indices) or reserved names: keep the key's type exactly.
        for k in obj:
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"state key {k!r} at {key} must be a str, int, float, bool or None.")
        return {"__items__": [[k, _split_state(v, f"{key}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split_state(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split_state(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"state value at {key} is a {type(obj).__name__}; a checkpoint state holds tensors, numbers, strings, "
        "None, lists, tuples and dicts only."
    )


def _join_state(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            key = obj["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"the checkpoint's JSON names tensor {key!r}, which its weight file lacks.")
            return tensors[key]
        if set(obj) == {"__items__"}:
            return {k: _join_state(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(_join_state(v, tensors) for v in obj["__tuple__"])
        return {k: _join_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_state(v, tensors) for v in obj]
    return obj


def _tensors(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    # Contiguous CPU copies: safetensors refuses shared or strided storage (e.g. tied embeddings).
    return {prefix + k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


# ------------------------------------------------------------------------------------------------------- save / load
def save_checkpoint(path, model: nn.Module, config: dict | None = None, ema=None, *, state: dict | None = None):
    """Save ``model`` (and optionally its EMA weights and a training state) to ``<path>.safetensors`` + ``.json``.

    Args:
        path: file stem (a trailing ``.safetensors``/``.json`` is ignored); parent folders are created.
        model: the network.
        config: any JSON-serialisable dict (training settings, schedule name, data info ...).
        ema: an :class:`~diffuse_edu.train.EMA` or a module holding averaged weights, or None.
        state: a nested dict of tensors, numbers, strings, lists, tuples and dicts (e.g. the training state written
            by :func:`~diffuse_edu.train.train`), or None.
    Returns:
        The two paths written (weights, JSON).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict; got {type(config).__name__}.")
    try:
        json.dumps(config, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"config must be JSON-serialisable (numbers, strings, lists, dicts with string keys): {err}"
        ) from None
    if state is not None and not isinstance(state, dict):
        raise TypeError(f"state must be a dict or None; got {type(state).__name__}.")
    ema_state = None
    if ema is not None:
        ema_state = ema.state_dict() if callable(getattr(ema, "state_dict", None)) else None
        if not isinstance(ema_state, dict):
            raise TypeError(f"ema must be an EMA, an nn.Module or None; got {type(ema).__name__}.")
        model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        ema_shapes = {k: tuple(v.shape) for k, v in ema_state.items() if isinstance(v, torch.Tensor)}
        if ema_shapes != model_shapes:
            raise ValueError(
                "ema must hold averaged weights of this model (same names and shapes); it does not, so the checkpoint "
                "would not load."
            )
    st_path, json_path = _paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)

    tensors = _tensors(model.state_dict(), "model.")
    if ema_state is not None:
        tensors.update(_tensors(ema_state, "ema."))
    skeleton = None if state is None else _split_state(state, "state", tensors)
    file_info = _write_safetensors(st_path, tensors)
    ema_info = None
    if ema is not None and hasattr(ema, "num_updates"):
        ema_info = {"decay": ema.decay, "warmup": ema.warmup, "num_updates": ema.num_updates}
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "net": net_spec(model),
        "has_ema": ema is not None,
        "ema": ema_info,
        "config": config,
        "files": {st_path.name: file_info},
        "state": skeleton,
        "torch": torch.__version__,
    }
    # The JSON goes last: it is the commit point, and it holds the sha256 of the file just written. Keys keep their
    # insertion order (no sort_keys): a network's config may be order-sensitive (e.g. which column is which token).
    _write_text(json_path, json.dumps(meta, indent=1))
    _fsync_dir(st_path.parent)
    return st_path, json_path


def _read_meta(json_path: Path) -> dict:
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{json_path} is not a diffuse_edu checkpoint: its JSON does not parse ({err}). A diffuse_edu checkpoint "
            "is a <stem>.safetensors + <stem>.json pair written by save_checkpoint."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{json_path} is not a diffuse_edu checkpoint (format={found!r}, expected {_FORMAT!r}).")
    version = meta.get("version")
    if not isinstance(version, int) or version > _VERSION:
        raise CheckpointError(
            f"{json_path} has checkpoint version {version!r}; this diffuse_edu reads versions 1..{_VERSION} "
            "(upgrade diffuse_edu to read it)."
        )
    return meta


def _read_tensors(st_path: Path, json_path: Path, meta: dict, verify: bool) -> dict[str, torch.Tensor]:
    if not st_path.exists():
        raise CheckpointError(f"{json_path} is a diffuse_edu checkpoint but its weight file {st_path} is missing.")
    data = st_path.read_bytes()
    files = meta.get("files")
    info = None
    if isinstance(files, dict):
        # A pair copied under another stem still verifies: save_checkpoint records exactly one weight file.
        info = files.get(st_path.name, next(iter(files.values())) if len(files) == 1 else None)
    if verify and meta["version"] >= 2:
        # Version 2 records every weight file's size and sha256: without them nothing can be verified.
        if not (isinstance(info, dict) and isinstance(info.get("bytes"), int) and isinstance(info.get("sha256"), str)):
            raise CheckpointError(
                f"{json_path} does not record the size and sha256 of {st_path.name} (an edited JSON?), so the weights "
                "cannot be verified; re-create the checkpoint, or pass verify=False at your own risk."
            )
    if verify and info is not None:
        # The size first: it names a truncated file precisely; the hash catches any changed byte.
        if len(data) != info["bytes"]:
            raise CheckpointError(
                f"{st_path} is truncated or was overwritten: {len(data):,} bytes, but {json_path.name} recorded "
                f"{info['bytes']:,}. Use an earlier checkpoint, or re-create this one."
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest != info["sha256"]:
            raise CheckpointError(
                f"{st_path} is corrupt: its sha256 is {digest[:16]}…, but {json_path.name} recorded "
                f"{info['sha256'][:16]}…. Use an earlier checkpoint, or re-create this one."
            )
    try:
        return load_safetensors_bytes(data)
    except Exception as err:  # safetensors raises its own error types for a bad header or a short buffer
        raise CheckpointError(f"{st_path} is not a readable safetensors file (corrupt or truncated): {err}") from None


def load_checkpoint(
    path,
    model_or_build: nn.Module | Callable[[dict], nn.Module] | None = None,
    *,
    device: str | torch.device | None = None,
    verify: bool = True,
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (or by :func:`~diffuse_edu.train.train`).

    Args:
        path: the same stem given to :func:`save_checkpoint`.
        model_or_build: a model to load the weights into, or ``build_fn(config) -> model``, or None to rebuild the
            network from its saved ``config()`` (see the module docstring).
        device: where to put the model(s); default: leave them where they are (a rebuilt model is on CPU).
        verify: check the weight file's size and sha256 against the JSON before reading it.
    Returns:
        A :class:`Checkpoint` (model, config, ema_model, state).
    Raises:
        FileNotFoundError: neither file exists.
        CheckpointError: not a diffuse_edu checkpoint, or a corrupt / truncated / incomplete one.
    """
    st_path, json_path = _paths(path)
    check_device(device)  # before reading anything: 'nodevice' failed in model.to() after the load
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be a bool; got {type(verify).__name__}.")
    if not (model_or_build is None or isinstance(model_or_build, nn.Module) or callable(model_or_build)):
        raise TypeError(
            f"model_or_build must be an nn.Module, a callable build_fn(config) or None; got {type(model_or_build)}."
        )
    if not json_path.exists():
        given = Path(path)
        if given.is_file() and given not in (st_path, json_path):
            raise CheckpointError(
                f"{given} is not a diffuse_edu checkpoint: a diffuse_edu checkpoint is a <stem>.safetensors + "
                "<stem>.json pair (never a pickle); pass the stem."
            )
        if st_path.exists():
            raise CheckpointError(
                f"{st_path} has no {json_path.name}: an incomplete diffuse_edu checkpoint (its save was interrupted "
                "before the JSON, the commit point, was written)."
            )
        raise FileNotFoundError(f"no diffuse_edu checkpoint at {_stem(path)}: expected {st_path} and {json_path}.")
    meta = _read_meta(json_path)
    tensors = _read_tensors(st_path, json_path, meta, verify)
    config = meta.get("config", {})
    if isinstance(model_or_build, nn.Module):
        model = model_or_build
    elif callable(model_or_build):
        model = model_or_build(config)
        if not isinstance(model, nn.Module):
            raise TypeError(f"build_fn(config) must return an nn.Module; got {type(model).__name__}.")
    else:
        if meta.get("net") is None:
            raise ValueError("this checkpoint's network has no config(); pass a model or a build_fn to rebuild it.")
        model = build_net(meta["net"])

    def load_into(module: nn.Module, prefix: str) -> None:
        sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"the weights in {st_path} do not fit {type(module).__name__} (a different architecture or "
                f"configuration?): {err}"
            ) from None

    load_into(model, "model.")
    ema_model = None
    if meta.get("has_ema"):
        ema_model = copy.deepcopy(model)
        load_into(ema_model, "ema.")
        ema_model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
        if ema_model is not None:
            ema_model.to(device)
    state = None if meta.get("state") is None else _join_state(meta["state"], tensors)
    return Checkpoint(
        model=model, config=config, ema_model=ema_model, state=state, ema=meta.get("ema"), path=_stem(path)
    )
