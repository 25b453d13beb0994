"""Judges: the captioned shapes' attribute classifiers and the digits' feature network, each trained once and cached.

:func:`shape_judge` returns a :class:`~diffuse_edu.nets.judges.ShapeAttributeClassifier` trained on freshly rendered
images (an endless stream, so it never sees the same image twice and cannot overfit), cached as safetensors + JSON
under ``<cache root>/judges/shapes/<config hash>/``. Training is seeded and runs inside ``torch.random.fork_rng``, so
asking for a judge does not move the caller's global random stream. :func:`shape_judge_accuracy` measures it on the
test split of :func:`~diffuse_edu.data.shapes.load_shapes`; a judge below 99 % on any attribute is not trustworthy
as a coherence metric, and training says so with a warning.

:func:`digit_judge` does the same for the 8×8 digits: a :class:`~diffuse_edu.nets.judges.DigitClassifier` trained on
the digits train split, cached under ``<cache root>/judges/digits/<config hash>/``, whose features give the Fréchet
distance of notebook 01 (:func:`frechet_to_digits`, next to its floor :func:`digits_frechet_floor`).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_number, check_positive_int
from ..cache import cache_dir_for
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.digits import load_digits_images
from ..data.shapes import ATTRIBUTES, IMAGE_SIZES, attribute_names, load_shapes, n_values, render, sample_attributes
from ..metrics.frechet import classifier_accuracy, frechet_digits
from ..nets.judges import DigitClassifier, ShapeAttributeClassifier

__all__ = [
    "JUDGE_CONFIG",
    "MIN_ACCURACY",
    "judge_config",
    "train_shape_judge",
    "shape_judge",
    "shape_judge_accuracy",
    "judge_table",
    "DIGIT_JUDGE_CONFIG",
    "digits_split",
    "train_digit_judge",
    "digit_judge",
    "frechet_to_digits",
    "digits_frechet_floor",
]

#: Everything that changes a trained judge, per image size (the level is added per judge); a change gives a new cache
#: key. At 32 px the full-resolution stage has one convolution (it is the costly one, and 32-px shapes are easy).
JUDGE_CONFIG = {
    16: dict(version=1, width=16, feat_dim=128, first_convs=2, steps=600, batch_size=128, lr=3e-3, seed=0),
    32: dict(version=1, width=16, feat_dim=128, first_convs=1, steps=300, batch_size=128, lr=3e-3, seed=0),
}
#: The held-out accuracy every attribute must reach for the judge's verdicts to count.
MIN_ACCURACY = 0.99

_LOADED: dict[tuple[str, str], ShapeAttributeClassifier] = {}


def judge_config(level: int, image_size: int, **overrides) -> dict:
    """The full configuration of one judge: ``JUDGE_CONFIG[image_size]`` plus ``level``, ``image_size``, overrides."""
    attribute_names(level)  # validates the level
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size not in IMAGE_SIZES:
        raise ValueError(
            f"image_size must be one of {IMAGE_SIZES} (the sizes judges are trained for); got {image_size!r}."
        )
    base = JUDGE_CONFIG[image_size]
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown judge settings {unknown}; expected some of {sorted(base)}.")
    # Checked here, before a cache key is made or a judge is trained (steps=2.5 trained, seed="0" failed late).
    for key, value in overrides.items():
        if key == "lr":
            check_number(value, "lr", 0.0, strict_low=True)
        else:
            check_positive_int(value, key, minimum=0 if key in ("seed", "version") else 1)
    return {**base, **overrides, "level": level, "image_size": image_size}


def _stream_seed(config: dict) -> int:
    # The judge's own training stream, unrelated to the train / valid / test streams of load_shapes.
    text = f"judges/shapes/{config['level']}/{config['image_size']}/{config['seed']}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def train_shape_judge(config: dict, *, verbose: bool = True) -> ShapeAttributeClassifier:
    """Train a judge from ``config`` (see :func:`judge_config`) on one thread; returns it in eval mode on the CPU.

    Every step renders a fresh batch (``batch_size`` images with random attributes and jitter), so the loss is an
    unbiased estimate of the test loss throughout. Adam with a one-cycle learning rate, cross-entropy summed over
    the attributes.
    """
    threads = torch.get_num_threads()
    # One thread: for convolutions this small, threading overhead costs more than it gains on a busy 2-core CPU.
    torch.set_num_threads(1)
    try:
        # fork_rng: building the judge must not move the user's global random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["seed"])
            return _train(config, verbose)
    finally:
        torch.set_num_threads(threads)


def _train(config: dict, verbose: bool) -> ShapeAttributeClassifier:
    level, size = config["level"], config["image_size"]
    model = ShapeAttributeClassifier(
        n_values(level), attribute_names(level), size, config["width"], config["feat_dim"], config["first_convs"]
    )
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["lr"], total_steps=config["steps"])
    gen = torch.Generator().manual_seed(_stream_seed(config))
    start = time.perf_counter()
    model.train()
    for _ in range(config["steps"]):
        attrs = sample_attributes(config["batch_size"], level, gen)  # (B, level)
        logits = model(render(attrs, size, gen))
        loss = sum(F.cross_entropy(logits[n], attrs[:, j]) for j, n in enumerate(model.names))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval().requires_grad_(False)
    if verbose:
        print(f"diffuse_edu: trained the level-{level}, {size}-px shape judge in {time.perf_counter() - start:.0f} s.")
    return model


def shape_judge_accuracy(judge: ShapeAttributeClassifier, n: int = 4000, seed: int = 0) -> dict[str, float]:
    """Held-out accuracy of every attribute, on ``n`` images of the test split of :func:`load_shapes`.

    Args:
        judge: a shape judge; its heads say the level, its input size the image size.
        n: test images.  seed: which draw of the test split.
    Returns:
        attribute name → share of test images whose predicted value is the true one.
    """
    if not isinstance(judge, ShapeAttributeClassifier):
        raise TypeError(f"judge must be a ShapeAttributeClassifier; got {type(judge).__name__}.")
    level = len(judge.names)
    if judge.names != attribute_names(level):
        raise ValueError(f"this judge's heads {judge.names} are not the attributes of a shapes level.")
    test = load_shapes(level, "test", n, judge.image_size, seed)
    correct = (judge.predict(test.images) == test.attributes).double().mean(0)  # (A,)
    return {name: correct[j].item() for j, name in enumerate(judge.names)}


def shape_judge(
    level: int,
    image_size: int = 32,
    *,
    cache: str | Path | None = None,
    retrain: bool = False,
    verbose: bool = True,
    **overrides,
) -> ShapeAttributeClassifier:
    """The judge of one (level, image size): loaded from the cache, or trained (≈ 20–60 s on one core) and cached.

    Args:
        level: 1..5.  image_size: 16 or 32.
        cache: cache root (default :func:`~diffuse_edu.cache.cache_root`).
        retrain: ignore any cached copy.
        verbose: print when training, with the held-out accuracy.
        overrides: settings of :data:`JUDGE_CONFIG` to change (tests use tiny ones); they change the cache key.
    Returns:
        A :class:`ShapeAttributeClassifier` in eval mode on the CPU, gradients off. Its held-out accuracy is stored
        next to the weights (``<folder>/judge.json``, key ``accuracy``).
    """
    config = judge_config(level, image_size, **overrides)

    def train_and_check(stem: Path) -> ShapeAttributeClassifier:
        model = train_shape_judge(config, verbose=verbose)
        accuracy = shape_judge_accuracy(model)
        if verbose:
            print("diffuse_edu: held-out accuracy " + ", ".join(f"{k} {v:.2%}" for k, v in accuracy.items()) + ".")
        low = {k: v for k, v in accuracy.items() if v < MIN_ACCURACY}
        if low:
            warnings.warn(
                f"the level-{level}, {image_size}-px shape judge is below {MIN_ACCURACY:.0%} on {low}: its coherence "
                "scores are not trustworthy (train longer: shape_judge(..., steps=...)).",
                stacklevel=4,  # the caller of shape_judge (through _cached_judge)
            )
        save_checkpoint(stem, model, {"judge": config, "accuracy": accuracy})
        return model

    folder = cache_dir_for("judges/shapes", config, root=cache)
    return _cached_judge(folder, "judge", train_and_check, retrain)


def _cached_judge(folder: Path, tag: str, train_and_save, retrain: bool) -> nn.Module:
    """The judge saved in ``folder`` (memoised in this process), or ``train_and_save(stem)``'s if absent or damaged."""
    mem_key = (str(folder.resolve()), tag)
    if not retrain and mem_key in _LOADED:
        return _LOADED[mem_key]
    stem = folder / "judge"
    model = None
    if not retrain and stem.with_name("judge.json").exists():
        try:
            model = load_checkpoint(stem).model.eval().requires_grad_(False)
        except (OSError, ValueError, RuntimeError, KeyError):
            model = None  # a damaged cache entry: train again
    if model is None:
        model = train_and_save(stem)
    _LOADED[mem_key] = model
    return model


def judge_table(levels=(1, 2, 3, 4, 5), sizes=IMAGE_SIZES, *, cache=None, retrain: bool = False) -> str:
    """Train (or load) every judge and return a Markdown table of held-out accuracies and training times.

    ``python -m diffuse_edu.recipes.judges --retrain`` prints it (the table of the shapes data card comes from there).
    Times are those of :func:`shape_judge` (training, the accuracy check and saving): wall-clock seconds and CPU
    seconds of this process (on one thread the two agree on an idle machine; on a shared one, CPU seconds are the
    fair number).
    """
    header = "| level | size | " + " | ".join(ATTRIBUTES) + " | min | wall s | CPU s |"
    rows = [header, "|---" * (len(ATTRIBUTES) + 5) + "|"]
    for size in sizes:
        for level in levels:
            wall, cpu = time.perf_counter(), time.process_time()
            judge = shape_judge(level, size, cache=cache, retrain=retrain, verbose=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            acc = shape_judge_accuracy(judge)
            cells = [f"{acc[a]:.2%}" if a in acc else "—" for a in ATTRIBUTES]
            rows.append(
                f"| {level} | {size} | " + " | ".join(cells) + f" | {min(acc.values()):.2%} | {wall:.0f} | {cpu:.0f} |"
            )
            print(rows[-1], flush=True)
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------------
# The digit judge: features for the Fréchet distance of 8×8 digits (notebook 01, bench_continuous)
# ---------------------------------------------------------------------------------------------------------------------

#: Everything that changes the trained digit classifier (a change gives a new cache key), and the train/test split of
#: the digits it is trained and scored on.
DIGIT_JUDGE_CONFIG = dict(
    version=1,
    width=16,
    feat_dim=64,
    epochs=10,
    batch_size=64,
    lr=3e-3,
    seed=0,
    split_seed=0,
    test_fraction=0.2,
    shift_augment=1,
)


def digits_split(split: str, config: dict | None = None) -> Tensor:
    """The images (N, 1, 8, 8) of the digits split ``"train"`` or ``"test"`` the digit judge uses."""
    config = DIGIT_JUDGE_CONFIG if config is None else config
    if not isinstance(config, dict) or not {"split_seed", "test_fraction"} <= set(config):
        raise TypeError(
            f"config must be a dict with 'split_seed' and 'test_fraction' (see DIGIT_JUDGE_CONFIG); got {config!r}."
        )
    return load_digits_images(split, seed=config["split_seed"], test_fraction=config["test_fraction"]).images


def _random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by up to ``max_shift`` pixels (zero = background −1 padding): cheap augmentation."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(b, 1, h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(b, 1, h, w)
    return out.gather(3, cols)


def train_digit_judge(config: dict | None = None, *, verbose: bool = True) -> DigitClassifier:
    """Train the digit classifier from ``config`` (default :data:`DIGIT_JUDGE_CONFIG`) on one thread.

    Adam with a one-cycle learning rate over ``epochs`` shuffled passes of the train split, random shifts of up to
    ``shift_augment`` pixels; seeded, inside ``torch.random.fork_rng`` (the caller's global stream does not move).
    Returns it in eval mode on the CPU, gradients off.
    """
    config = DIGIT_JUDGE_CONFIG if config is None else config
    threads = torch.get_num_threads()
    # One thread: for convolutions this small, threading overhead costs more than it gains (4x on a busy 2-core CPU).
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["seed"])
            model = DigitClassifier(config["width"], config["feat_dim"])
            return _train_digits(model, config, verbose)
    finally:
        torch.set_num_threads(threads)


def _train_digits(model: DigitClassifier, config: dict, verbose: bool) -> DigitClassifier:
    train = load_digits_images("train", seed=config["split_seed"], test_fraction=config["test_fraction"])
    gen = torch.Generator().manual_seed(config["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    n, bs = len(train.labels), config["batch_size"]
    steps = config["epochs"] * (n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["lr"], total_steps=steps)
    model.train()
    for _ in range(config["epochs"]):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - bs + 1, bs):
            idx = perm[start : start + bs]
            x = _random_shift(train.images[idx], config["shift_augment"], gen)
            loss = F.cross_entropy(model(x), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval().requires_grad_(False)
    if verbose:
        test = load_digits_images("test", seed=config["split_seed"], test_fraction=config["test_fraction"])
        acc = classifier_accuracy(test.images, test.labels, model)
        print(f"diffuse_edu: trained the digit classifier for Fréchet distances (test accuracy {acc:.1%}).")
    return model


def digit_judge(*, cache: str | Path | None = None, retrain: bool = False, verbose: bool = True) -> DigitClassifier:
    """The digit judge: loaded from the cache, or trained (≈ 5–20 s on a CPU, once) and cached.

    Cached as safetensors + JSON under ``<cache root>/judges/digits/<config hash>/``.

    Args:
        cache: cache root (default :func:`~diffuse_edu.cache.cache_root`).
        retrain: ignore any cached copy.
        verbose: print when training.
    Returns:
        A :class:`~diffuse_edu.nets.judges.DigitClassifier` in eval mode on the CPU, gradients off.
    """

    def train_and_save(stem: Path) -> DigitClassifier:
        model = train_digit_judge(DIGIT_JUDGE_CONFIG, verbose=verbose)
        save_checkpoint(stem, model, {"judge": DIGIT_JUDGE_CONFIG})
        return model

    folder = cache_dir_for("judges/digits", DIGIT_JUDGE_CONFIG, root=cache)
    return _cached_judge(folder, "digits", train_and_save, retrain)


def frechet_to_digits(samples: Tensor, reference: str | Tensor = "test", judge: DigitClassifier | None = None) -> float:
    """Fréchet distance of digit images ``samples`` (N, 1, 8, 8) to ``reference`` (``"test"``, ``"train"`` or images),
    in the digit judge's features (default :func:`digit_judge`). Biased upwards at small N: compare it with
    :func:`digits_frechet_floor` at the same N."""
    judge = judge if judge is not None else digit_judge()
    ref = digits_split(reference) if isinstance(reference, str) else reference
    return frechet_digits(samples, ref, judge)


def digits_frechet_floor(
    n: int | None = None, reference: str | Tensor = "test", seed: int = 0, judge: DigitClassifier | None = None
) -> float:
    """The FD of ``n`` real train images (random, seeded; default all) to ``reference``: what a perfect model scores."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise TypeError(f"n must be an int (images of the floor) or None; got {n!r}.")
    check_positive_int(seed, "seed", minimum=0)
    train = digits_split("train")
    if n is not None:
        if not 2 <= n <= len(train):
            raise ValueError(f"n must lie in [2, {len(train)}]; got {n}.")
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]]
    return frechet_to_digits(train, reference, judge)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train (or load) the shape judges and print their accuracies.")
    parser.add_argument("--retrain", action="store_true", help="ignore cached judges")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(IMAGE_SIZES))
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    print(judge_table(args.levels, args.sizes, retrain=args.retrain))
