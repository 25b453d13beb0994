"""Checkpoints: bit-exact round trip, no pickle, sha256 verification, atomic writes, training state."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from diffuse_edu import checkpoint as ckmod
from diffuse_edu.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    register_net,
    save_checkpoint,
)
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.nets.unet import UNet
from diffuse_edu.train import EMA


def _assert_same_state(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("net", [lambda: TimeMLP(hidden=16, depth=2, time_dim=8), lambda: UNet(8, base=16)])
def test_checkpoint_round_trip_is_bit_exact(tmp_path, net):
    torch.manual_seed(0)
    model = net()
    ema = EMA(model, 0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    ema.update(model)
    cfg = {"lr": 1e-3, "schedule": "cosine", "nested": {"a": [1, 2]}}
    st, js = save_checkpoint(tmp_path / "ck", model, cfg, ema=ema)
    assert st.name == "ck.safetensors" and js.name == "ck.json"
    # No builder needed: the net's config() was stored.
    ck = load_checkpoint(tmp_path / "ck")
    assert type(ck.model) is type(model) and ck.config == cfg
    _assert_same_state(model, ck.model)
    _assert_same_state(ema.module, ck.ema_model)
    # Also into a given model, or through a build function.
    _assert_same_state(model, load_checkpoint(tmp_path / "ck.safetensors", net()).model)
    _assert_same_state(model, load_checkpoint(tmp_path / "ck", lambda c: net()).model)
    # No pickle anywhere: only the two files, JSON readable, safetensors header is JSON too.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors"]
    meta = json.loads(js.read_text())
    assert meta["has_ema"] and meta["net"]["class"].startswith("diffuse_edu.nets.")
    raw = st.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    json.loads(raw[8 : 8 + header_len])
    assert b"\x80\x04" not in raw[:2]  # not a pickle protocol header


def test_checkpoint_unknown_net_needs_builder_or_registration(tmp_path):
    class Tiny(nn.Module):
        def __init__(self, width=3):
            super().__init__()
            self.width = width
            self.lin = nn.Linear(width, 1)

        def config(self):
            return {"width": self.width}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    save_checkpoint(tmp_path / "t", Tiny(), {})
    with pytest.raises(ValueError, match="register_net"):
        load_checkpoint(tmp_path / "t")
    register_net(Tiny)
    assert isinstance(load_checkpoint(tmp_path / "t").model, Tiny)
    save_checkpoint(tmp_path / "plain", nn.Linear(2, 2))
    with pytest.raises(ValueError, match="build_fn"):
        load_checkpoint(tmp_path / "plain")
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "bad", nn.Linear(2, 2), {"x": torch.zeros(1)})
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing", nn.Linear(2, 2))


def _saved(tmp_path, name="ck"):
    torch.manual_seed(0)
    model = TimeMLP(hidden=16, depth=1, time_dim=8)
    save_checkpoint(tmp_path / name, model, {"a": 1})
    return model, tmp_path / f"{name}.safetensors", tmp_path / f"{name}.json"


def test_json_records_sha256_and_size_of_the_weight_file(tmp_path):
    import hashlib

    _, st, js = _saved(tmp_path)
    info = json.loads(js.read_text())["files"]["ck.safetensors"]
    raw = st.read_bytes()
    assert info == {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}


def test_flipped_byte_and_truncation_are_refused_with_a_clear_error(tmp_path):
    model, st, _ = _saved(tmp_path)
    raw = bytearray(st.read_bytes())
    raw[-3] ^= 0x01  # one bit of one weight: safetensors alone would load it silently
    st.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"ck\.safetensors is corrupt: its sha256"):
        load_checkpoint(tmp_path / "ck")
    # verify=False skips the check (and here loads the silently wrong weight).
    assert load_checkpoint(tmp_path / "ck", verify=False).model is not None
    st.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "ck", verify=False)


def test_files_that_are_not_checkpoints_get_a_diffuse_edu_message(tmp_path):
    # A pickle written by torch.save: refused by name, never unpickled.
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="model.pt is not a diffuse_edu checkpoint.*never a pickle"):
        load_checkpoint(tmp_path / "model.pt")
    # A JSON that does not parse, one from another tool, and weights without their JSON.
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "a.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="not a diffuse_edu checkpoint: its JSON does not parse"):
        load_checkpoint(tmp_path / "a")
    (tmp_path / "b.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a diffuse_edu checkpoint .format='something-else'"):
        load_checkpoint(tmp_path / "b")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "c.safetensors"))
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(tmp_path / "c")
    _saved(tmp_path, "d")
    (tmp_path / "d.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weight file .* is missing"):
        load_checkpoint(tmp_path / "d")
    _saved(tmp_path, "e")
    meta = json.loads((tmp_path / "e.json").read_text())
    meta["version"] = 99
    (tmp_path / "e.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "e")
    # CheckpointError is a ValueError: callers catching ValueError keep working.
    assert issubclass(CheckpointError, ValueError)


def test_version_1_checkpoints_still_load(tmp_path):
    # The format before sha256s and training state: weights + a JSON without "files".
    torch.manual_seed(0)
    model = TimeMLP(hidden=16, depth=1, time_dim=8)
    save_file({f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "old.safetensors"))
    meta = {"format": "diffuse_edu-checkpoint", "version": 1, "net": ckmod.net_spec(model), "has_ema": False}
    (tmp_path / "old.json").write_text(json.dumps({**meta, "config": {"k": 2}}))
    ck = load_checkpoint(tmp_path / "old")
    _assert_same_state(model, ck.model)
    assert ck.config == {"k": 2} and ck.state is None


def test_training_state_round_trips_exactly(tmp_path):
    opt_state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 2)}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0], "foreach": None}],
    }
    state = {
        "step": 7,
        "losses": torch.tensor([0.5, 0.25], dtype=torch.float64),
        "optimizer": opt_state,
        "rng": torch.get_rng_state(),
        "nested": [{"__reserved": 1, 2: "int key"}, (1, 2.5, None, True)],
        "nan": float("nan"),
    }
    save_checkpoint(tmp_path / "s", nn.Linear(2, 2), state=state)
    got = load_checkpoint(tmp_path / "s", nn.Linear(2, 2)).state
    assert got["step"] == 7 and torch.equal(got["losses"], state["losses"]) and got["losses"].dtype == torch.float64
    assert torch.equal(got["rng"], state["rng"]) and got["rng"].dtype == torch.uint8
    assert list(got["optimizer"]["state"]) == [0]  # the int key survives JSON
    assert torch.equal(got["optimizer"]["state"][0]["step"], torch.tensor(3.0))
    assert got["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # a tuple again
    assert got["nested"] == [{"__reserved": 1, 2: "int key"}, (1, 2.5, None, True)]
    assert got["nan"] != got["nan"]
    collide = {"a/b": torch.zeros(1), "a": {"b": torch.ones(1)}}
    save_checkpoint(tmp_path / "c", nn.Linear(2, 2), state=collide)
    got = load_checkpoint(tmp_path / "c", nn.Linear(2, 2)).state
    assert torch.equal(got["a/b"], torch.zeros(1)) and torch.equal(got["a"]["b"], torch.ones(1))
    with pytest.raises(TypeError, match="state value at state/bad is a set"):
        save_checkpoint(tmp_path / "t", nn.Linear(2, 2), state={"bad": {1, 2}})


def test_interrupted_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = nn.Linear(3, 3)
    save_checkpoint(checkpoint_path(tmp_path, 10), model)
    real_replace = os.replace

    def killed_before_commit(src, dst):
        if str(dst).endswith(".json"):  # the weights were renamed; the JSON (the commit point) never lands
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    monkeypatch.setattr(ckmod.os, "replace", killed_before_commit)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(checkpoint_path(tmp_path, 20), nn.Linear(3, 3))
    monkeypatch.undo()
    # The half-written step 20 is invisible: the latest committed checkpoint is step 10, and it loads.
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 10)
    _assert_same_state(model, load_checkpoint(latest_checkpoint(tmp_path), nn.Linear(3, 3)).model)
    assert not any(".tmp-" in p.name for p in tmp_path.iterdir())  # the temporary file was removed
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(checkpoint_path(tmp_path, 20), nn.Linear(3, 3))


def test_latest_and_prune(tmp_path):
    assert latest_checkpoint(tmp_path / "none") is None and latest_checkpoint(tmp_path) is None
    for s in (5, 100, 20):
        save_checkpoint(checkpoint_path(tmp_path, s), nn.Linear(1, 1))
    (tmp_path / "step_00000300.safetensors").write_bytes(b"")  # weights without JSON: not committed
    assert latest_checkpoint(tmp_path).name == "step_00000100"
    removed = prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in removed] == ["step_00000005"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["step_00000020.json", "step_00000100.json"]
    with pytest.raises(ValueError, match="keep"):
        prune_checkpoints(tmp_path, keep=0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda p: save_checkpoint(p / "x", "not a model"), TypeError, "model must be a torch.nn.Module; got str"),
        (lambda p: save_checkpoint(p / "x", nn.Linear(1, 1), [1]), TypeError, "config must be a dict; got list"),
        (lambda p: save_checkpoint(p / "x", nn.Linear(1, 1), ema=3), TypeError, "ema must be an EMA"),
        (lambda p: save_checkpoint(p / "x", nn.Linear(1, 1), state=[1]), TypeError, "state must be a dict"),
        (lambda p: save_checkpoint(42, nn.Linear(1, 1)), TypeError, "path must be a str or os.PathLike"),
        (lambda p: load_checkpoint(p / "x", 3), TypeError, "model_or_build must be"),
        (lambda p: load_checkpoint(p / "x", device=0), TypeError, "device must be"),
        (lambda p: load_checkpoint(p / "x", verify="yes"), TypeError, "verify must be a bool"),
        (lambda p: checkpoint_path(p, -1), ValueError, "step must be a non-negative int"),
    ],
)
def test_bad_arguments(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)


def test_wrong_architecture_names_the_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "w", nn.Linear(2, 2), ema=EMA(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"w\.safetensors do not fit Linear"):
        load_checkpoint(tmp_path / "w", nn.Linear(3, 2))
    ck = load_checkpoint(tmp_path / "w", nn.Linear(2, 2))
    assert ck.ema == {"decay": 0.999, "warmup": True, "num_updates": 0}
