"""Data-parallel plumbing and random streams for :func:`diffuse_edu.train.train`.

- **torchrun.** :func:`distributed_env` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`setup_distributed` joins
  the process group (NCCL on CUDA, gloo on CPU) and picks ``cuda:LOCAL_RANK``; :class:`LossModule` puts the model and
  the loss inside one module, so ``DistributedDataParallel`` sees one forward per step whatever the loss does.
- **Random streams.** :func:`rank_seed` gives each rank its own seed (rank 0 keeps the one-process seed);
  :func:`rng_state` / :func:`set_rng_state` capture and restore every stream a run draws from (torch CPU and CUDA,
  NumPy, Python's ``random``, named ``torch.Generator`` s) for exact resume; :func:`held_generators` finds the
  generators a loss function holds, so the loop can warn about the ones it does not manage.
"""

from __future__ import annotations

import atexit
import functools
import os
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "distributed_env",
    "DistContext",
    "setup_distributed",
    "process_group_ready",
    "rank_seed",
    "LossModule",
    "rng_state",
    "set_rng_state",
    "normalise_generators",
    "held_generators",
    "warn_if_ranks_share",
]


# -------------------------------------------------------------------------------------------------------- distributed
def distributed_env() -> dict[str, int] | None:
    """``{"rank", "world_size", "local_rank"}`` when launched by ``torchrun`` with several processes, else None."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return None
    if world <= 1 or "RANK" not in os.environ:
        return None
    return {"rank": rank, "world_size": world, "local_rank": local}


@dataclass
class DistContext:
    """This process's place in the run: rank, number of processes, rank on its machine, and the backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1


def process_group_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank_seed(seed: int, rank: int) -> int:
    # A large odd stride: rank 0 keeps `seed` (= the one-process run), and seed s on rank 1 is not seed s+1 on rank 0.
    return (int(seed) + 1_000_003 * rank) % 2**63


def setup_distributed(distributed: bool | None, device) -> tuple[DistContext, torch.device | None]:
    """Join (or start) the process group when launched by torchrun; pick this rank's device."""
    import torch.distributed as dist

    if distributed is False or not dist.is_available():
        if distributed is True:
            raise ValueError("distributed=True, but this torch build has no torch.distributed.")
        return DistContext(), device
    env = distributed_env()
    if dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        local = env["local_rank"] if env else rank
    elif env is not None:
        world, rank, local = env["world_size"], env["rank"], env["local_rank"]
    elif distributed:
        raise ValueError(
            "distributed=True, but this process was not launched by torchrun (no RANK/WORLD_SIZE > 1 in the "
            "environment) and no process group is initialised. Launch with `torchrun --nproc_per_node=N script.py`."
        )
    else:
        return DistContext(), device
    if world <= 1:
        return DistContext(), device
    if device is None:
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        # Later train() calls reuse the group; it is torn down once, when the script ends (as NCCL asks).
        atexit.register(_destroy_process_group)
    return DistContext(rank, world, local, dist.get_backend()), device


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class LossModule(nn.Module):
    """The model and the loss as one module, so DDP sees exactly one forward per step.

    ``loss_fn`` receives the plain model, so it may call ``model.loss(x)``, several forwards, or read attributes:
    everything runs inside DDP's forward, whose backward then averages the gradients over the ranks.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable):
        super().__init__()
        self.model = model
        self._loss_fn = (loss_fn,)  # a tuple: never registered as a submodule

    def forward(self, batch):
        return self._loss_fn[0](self.model, batch)


# ---------------------------------------------------------------------------------------------------------- RNG state
def rng_state(device: torch.device, generators: Mapping[str, torch.Generator]) -> dict:
    """Every RNG this process draws from: torch CPU (and CUDA), NumPy, Python's random, and the named generators."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(
    state: dict, device: torch.device, generators: Mapping[str, torch.Generator], warn: bool = True
) -> None:
    """Restore :func:`rng_state`'s streams; warn (if ``warn``) when the saved generator names differ from these."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    saved = state.get("generators", {})
    if warn and set(saved) != set(generators):
        warnings.warn(
            f"the checkpoint holds generators {sorted(saved)}, this run passes generators={sorted(generators)}: "
            "only the common names are restored, so the resumed run is not bit-identical.",
            stacklevel=4,
        )
    for k in set(saved) & set(generators):
        generators[k].set_state(saved[k])


def normalise_generators(generators) -> dict[str, torch.Generator]:
    if generators is None:
        return {}
    if isinstance(generators, torch.Generator):
        return {"0": generators}
    if isinstance(generators, Mapping):
        items = list(generators.items())
    elif isinstance(generators, Sequence) and not isinstance(generators, (str, bytes)):
        items = [(str(i), g) for i, g in enumerate(generators)]
    else:
        raise TypeError(
            "generators must be a torch.Generator, a list of them or a dict name -> torch.Generator; "
            f"got {type(generators).__name__}."
        )
    out = {}
    for k, g in items:
        if not isinstance(g, torch.Generator):
            raise TypeError(f"generators[{k!r}] must be a torch.Generator; got {type(g).__name__}.")
        out[str(k)] = g
    return out


def held_generators(obj, depth: int = 3) -> list[torch.Generator]:
    """The torch.Generators a function holds in its closure / defaults / partial arguments (a few levels deep)."""
    found: list[torch.Generator] = []
    seen: set[int] = set()

    def visit(o, d):
        if id(o) in seen:
            return
        seen.add(id(o))
        if isinstance(o, torch.Generator):
            found.append(o)
            return
        if d == 0:
            return
        if isinstance(o, functools.partial):
            for v in (o.func, *o.args, *o.keywords.values()):
                visit(v, d - 1)
            return
        f = getattr(o, "__func__", o)
        for cell in getattr(f, "__closure__", None) or ():
            try:
                visit(cell.cell_contents, d - 1)
            except ValueError:  # an empty cell
                pass
        for v in (getattr(f, "__defaults__", None) or ()) + tuple((getattr(f, "__kwdefaults__", None) or {}).values()):
            visit(v, d - 1)

    visit(obj, depth)
    return found


def warn_if_ranks_share(t: torch.Tensor | None, ctx: DistContext) -> None:
    """Under DDP with an unsharded source: warn when every rank drew the same first batch (``t``: its first tensor)."""
    import torch.distributed as dist

    fp = torch.tensor([float(t.double().sum()) if t is not None else 0.0], dtype=torch.float64)
    if ctx.backend == "nccl":
        fp = fp.cuda()
    seen = [torch.zeros_like(fp) for _ in range(ctx.world_size)]
    dist.all_gather(seen, fp)
    if ctx.rank == 0 and all(torch.equal(s, seen[0]) for s in seen):
        warnings.warn(
            "every DDP rank drew the same first batch: the ranks repeat each other's data. Use infinite_batches "
            "(sharded automatically), or draw from torch's global generator / a generator passed in generators=.",
            stacklevel=3,
        )
