"""A joint transformer over raw pixels and raw characters, one clock per modality (MMDiT-like).

The image is cut into p×p patches and each patch becomes a token; each character of the caption is a token. Both go
into **one sequence**, so every layer's self-attention lets pixels read characters and characters read pixels — the
joint attention of SD3's MMDiT (Esser et al. 2024) and of the Diffuse Everything text–image model (Rojas et al. 2025).

What makes it a *decoupled-clock* network is the conditioning. Each modality m has its own time t_m and its own time
embedding c_m = MLP_m(sinusoid(t_m)); in every block, a token's adaLN shift, scale and gate (DiT, Peebles & Xie
2023) come from **its own modality's** c_m. So the pixels can be nearly clean while the caption is fully masked (or
the reverse) and each half of the sequence knows its own noise level. With ``cross_time=True`` each c_m also gets a
zero-initialised linear map of *all* modalities' time codes, so a token can know how noisy the other modality is
without inferring it from that modality's tokens; it is off by default because attention already sees the other
modality's tokens (masks are visible, pixel noise is measurable), which carries the same information.

Design choices, each the simplest that works at this scale:

* By default the attention and MLP weights are **shared** by the two modalities; what is per modality is the input
  embedding, the learned positions, a modality-type embedding, the time embedding, the adaLN maps and the output
  head. ``two_stream=True`` gives each modality its own attention and MLP weights, as SD3's MMDiT does (the
  attention stays joint): the same compute per token, more parameters. On the captioned shapes it learns both
  conditional directions faster (cpu setting, level 3, 3000 steps × 64: text → image / image → text Strict 69.0 /
  62.5 % vs 62.5 / 54.0 % shared, 1.53 M vs 1.00 M parameters; on 2 CPU threads 8.5 vs 8.7 training steps/s), so
  the text–image recipe's CPU setting uses it.
* **adaLN-Zero**: the adaLN maps and both heads start at zero, so every block starts as the identity and the
  network's first outputs are 0 (ε = 0, uniform logits), which is what makes deep DiTs train stably.
* Outputs: for pixels a tensor shaped like the image (ε, x₀ or v: the loss decides which), for characters logits
  over the V clean symbols at every position. Both are returned in float32, also under bf16 autocast, so losses and
  samplers work in full precision.
* On CUDA, checks at the door look at shapes and dtypes only: value checks (token ids, times) would each cost a
  host–device synchronisation on every call, so they run only for CPU tensors (and not while ``torch.compile``
  traces the model, where they would break the graph).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_time, net_checks_values
from .embeddings import sinusoidal_embedding

__all__ = ["JointBlock", "JointPixelCharTransformer", "PRESETS"]

#: Size presets. ``"cpu"``: 16-px images in patches of 4 (16 image tokens), ≈ 1 M parameters, trains at several
#: steps per second on two CPU cores. ``"gpu"``: 32-px images in patches of 4 (64 image tokens), ≈ 9 M parameters.
PRESETS: dict[str, dict] = {
    "cpu": dict(image_size=16, patch_size=4, width=128, depth=4, heads=4, mlp_ratio=2, time_dim=64),
    "gpu": dict(image_size=32, patch_size=4, width=384, depth=6, heads=6, mlp_ratio=2, time_dim=64),
}


class JointBlock(nn.Module):
    """A pre-norm transformer block over a joint sequence, modulated per segment (adaLN-Zero).

    Args:
        width: model width D.  heads: attention heads (divide D).  mlp_ratio: MLP hidden width / D.
        cond_dim: width of each modality's conditioning vector.  n_modalities: number of segments.
        two_stream: each segment its own attention (qkv, output) and MLP weights; the attention stays joint.
    """

    def __init__(
        self, width: int, heads: int, mlp_ratio: float, cond_dim: int, n_modalities: int, two_stream: bool = False
    ):
        super().__init__()
        self.heads = heads
        self.two_stream = bool(two_stream)
        # No affine parameters: the adaLN shift and scale take their place (DiT).
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(mlp_ratio * width)

        def mlp() -> nn.Module:
            return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

        if self.two_stream:  # SD3's MMDiT: each modality its own attention and MLP weights, one joint attention
            self.qkv = nn.ModuleList(nn.Linear(width, 3 * width) for _ in range(n_modalities))
            self.proj = nn.ModuleList(nn.Linear(width, width) for _ in range(n_modalities))
            self.mlp = nn.ModuleList(mlp() for _ in range(n_modalities))
        else:
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.mlp = mlp()
        # One adaLN map per modality: c_m → (shift, scale, gate) × (attention, MLP). Zero: the block starts as identity.
        self.ada = nn.ModuleList(nn.Linear(cond_dim, 6 * width) for _ in range(n_modalities))
        for lin in self.ada:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, segments: Sequence[Tensor], conds: Sequence[Tensor]) -> list[Tensor]:
        """``segments[m]`` shape (B, N_m, D): modality m's tokens; ``conds[m]`` shape (B, cond_dim). Returns the
        segments, same shapes.

        The modalities stay separate tensors: only the attention sees one joint sequence (one concatenation of q, k, v
        per block). Keeping one joint tensor instead and cutting it per modality for every modulation and every
        two-stream layer made about 18 concatenations per block: 9 % of a training step on 2 CPU cores (cpu preset, two
        streams, batch 64; 4 % now), and the recipe's loop ran at 8.0 steps/s against 8.4–8.8 now (the same outputs).
        """
        B, D = segments[0].shape[0], segments[0].shape[-1]
        H = self.heads
        # Each modality's six modulation vectors, (B, 1, D) each, from its own conditioning:
        # (shift1, scale1, gate1, shift2, scale2, gate2) of its attention and MLP.
        mods = [ada(F.silu(c))[:, None, :].chunk(6, dim=-1) for ada, c in zip(self.ada, conds, strict=True)]
        n_seg = len(segments)

        def maps(layer, m: int):  # modality m's linear map / MLP (two streams), or the shared one
            return layer[m] if self.two_stream else layer

        # Attention: each modality's modulated tokens to q, k, v; one joint attention over every token.
        qkv = torch.cat(
            [
                maps(self.qkv, m)(self.norm1(x) * (1 + mod[1]) + mod[0])
                for m, (x, mod) in enumerate(zip(segments, mods, strict=True))
            ],
            dim=1,
        )  # (B, N, 3D)
        N = qkv.shape[1]
        q, k, v = qkv.view(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)  # 3 × (B, H, N, D/H)
        a = F.scaled_dot_product_attention(q, k, v)  # joint attention: every token sees both modalities
        a = a.transpose(1, 2).reshape(B, N, D).split([x.shape[1] for x in segments], dim=1)
        out = []
        for m in range(n_seg):
            x, mod = segments[m], mods[m]
            x = x + mod[2] * maps(self.proj, m)(a[m])
            out.append(x + mod[5] * maps(self.mlp, m)(self.norm2(x) * (1 + mod[4]) + mod[3]))
        return out


class JointPixelCharTransformer(nn.Module):
    """Denoiser of (image, caption) pairs with one clock per modality: ``net(xs, ts) -> dict``.

    Inputs ``xs = {image_name: (B, C, S, S) float, text_name: (B, L) long in [0, V]}`` (id V is the mask) and
    ``ts = {image_name: (B,), text_name: (B,)}`` in [0, 1]; output ``{image_name: (B, C, S, S), text_name: (B, L, V)}``.
    With ``text_input="vectors"`` the caption comes as continuous vectors ``(B, L, V)`` float instead (a caption
    diffused in a continuous space, e.g. noisy one-hot vectors: the "one state space" baseline), read by a linear
    map; the output is then a prediction for those vectors, of the same shape.

    Args:
        image_size: side S of the images.  channels: C.
        patch_size: side p of a patch (divides S); the image gives (S/p)² tokens of C·p² numbers each.
        text_len: longest caption L (learned positions for L tokens; shorter inputs use the first ones).
        vocab_size: clean symbols V (the end marker / padding included); inputs may also hold the mask id V.
        width, depth, heads: transformer size (heads divide width).  mlp_ratio: MLP hidden width / width.
        time_dim: width of each modality's time embedding (input of the adaLN maps).
        freq_dim: width of the sinusoidal time code.
        cross_time: also feed every modality's conditioning a zero-initialised map of all the time codes.
        image_name, text_name: the keys of the two modalities.
        text_input: ``"ids"`` (token ids, embedded) or ``"vectors"`` (V numbers per position, mapped linearly).
        two_stream: per-modality attention and MLP weights in every block (see the module docstring).
        conv_stem: channels k of an optional convolutional stem (0, the default: none). Two 3×3 convolutions with
            GELU at full resolution; their k feature maps are patchified together with the raw pixels, so each
            image token also sees a 2-pixel border around its patch (a shape centred on a patch corner is split over
            four tokens otherwise).
    """

    def __init__(
        self,
        image_size: int = 16,
        channels: int = 3,
        patch_size: int = 4,
        text_len: int = 68,
        vocab_size: int = 25,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2,
        time_dim: int = 64,
        freq_dim: int = 64,
        cross_time: bool = False,
        image_name: str = "image",
        text_name: str = "caption",
        text_input: str = "ids",
        conv_stem: int = 0,
        two_stream: bool = False,
    ):
        super().__init__()
        ints = dict(
            image_size=image_size,
            channels=channels,
            patch_size=patch_size,
            text_len=text_len,
            vocab_size=vocab_size,
            width=width,
            depth=depth,
            heads=heads,
            time_dim=time_dim,
            freq_dim=freq_dim,
        )
        for name, val in ints.items():
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name} must be a positive int; got {val!r}.")
        if image_size % patch_size:
            raise ValueError(f"patch_size={patch_size} must divide image_size={image_size}.")
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}.")
        if freq_dim % 2:
            raise ValueError(f"freq_dim must be even (cosines and sines); got {freq_dim}.")
        if (
            isinstance(mlp_ratio, bool)
            or not isinstance(mlp_ratio, (int, float))
            or not math.isfinite(mlp_ratio)  # NaN and inf failed inside int()
            or int(mlp_ratio * width) < 1
        ):
            raise ValueError(f"mlp_ratio must be a positive number; got {mlp_ratio!r}.")
        if isinstance(conv_stem, bool) or not isinstance(conv_stem, int) or conv_stem < 0:
            raise ValueError(f"conv_stem must be an int >= 0 (0: no stem); got {conv_stem!r}.")
        if text_input not in ("ids", "vectors"):
            raise ValueError(f"text_input must be 'ids' or 'vectors'; got {text_input!r}.")
        if not (isinstance(image_name, str) and isinstance(text_name, str)) or image_name == text_name:
            raise ValueError(
                f"image_name and text_name must be two different strings; got {image_name!r}, {text_name!r}."
            )
        self._config = dict(
            ints, mlp_ratio=mlp_ratio, cross_time=bool(cross_time), image_name=image_name, text_name=text_name
        )
        if text_input != "ids":  # keeps the configuration (and so the cache keys) of every existing network
            self._config["text_input"] = text_input
        if conv_stem:
            self._config["conv_stem"] = conv_stem
        if two_stream:
            self._config["two_stream"] = True
        self.text_input = text_input
        self.two_stream = bool(two_stream)
        self.image_size, self.channels, self.patch_size = image_size, channels, patch_size
        self.text_len, self.vocab_size, self.freq_dim = text_len, vocab_size, freq_dim
        self.image_name, self.text_name = image_name, text_name
        self.names = (image_name, text_name)
        self.n_patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size**2

        # Inputs: a linear map of each flattened patch; an embedding of V + 1 symbols (the clean ones and the mask).
        self.stem = None
        if conv_stem:
            k = conv_stem
            self.stem = nn.Sequential(
                nn.Conv2d(channels, k, 3, padding=1), nn.GELU(), nn.Conv2d(k, k, 3, padding=1), nn.GELU()
            )
        self.patch_in = nn.Linear((channels + conv_stem) * patch_size**2, width)
        self.tok_in = nn.Embedding(vocab_size + 1, width) if text_input == "ids" else nn.Linear(vocab_size, width)
        # Learned positions per modality (a 2-D grid flattened row-major, and the character index), plus a type code.
        self.pos_image = nn.Parameter(torch.zeros(self.n_patches, width))
        self.pos_text = nn.Parameter(torch.zeros(text_len, width))
        self.modality = nn.Parameter(torch.zeros(2, width))
        # One time embedding per modality: its own clock.
        self.time = nn.ModuleList(
            nn.Sequential(nn.Linear(freq_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)) for _ in range(2)
        )
        self.cross = None
        if cross_time:
            self.cross = nn.ModuleList(nn.Linear(2 * freq_dim, time_dim) for _ in range(2))
        self.blocks = nn.ModuleList(JointBlock(width, heads, mlp_ratio, time_dim, 2, two_stream) for _ in range(depth))
        # Output: final LayerNorm modulated per modality (shift, scale), then one head per modality.
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.ModuleList(nn.Linear(time_dim, 2 * width) for _ in range(2))
        self.patch_out = nn.Linear(width, patch_dim)
        self.tok_out = nn.Linear(width, vocab_size)
        self._init_weights()

    def _init_weights(self) -> None:
        # Xavier for the linear maps and small normals for embeddings and positions (DiT); then adaLN-Zero: every
        # modulation map, the cross-time maps and both heads start at exactly zero.
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)
        for p in (self.tok_in.weight, self.pos_image, self.pos_text, self.modality):
            nn.init.normal_(p, std=0.02)
        zero = [*self.ada_out, self.patch_out, self.tok_out, *(self.cross or [])]
        zero += [lin for block in self.blocks for lin in block.ada]
        for lin in zero:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    # ------------------------------------------------------------------------------------------------------------------

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> JointPixelCharTransformer:
        """Rebuild from :meth:`config`."""
        return cls(**config)

    @classmethod
    def preset(cls, name: str, *, text_len: int, vocab_size: int, **overrides) -> JointPixelCharTransformer:
        """A network of a :data:`PRESETS` size (``"cpu"`` or ``"gpu"``), for captions of ``text_len`` characters."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}; got {name!r}.")
        return cls(**{**PRESETS[name], "text_len": text_len, "vocab_size": vocab_size, **overrides})

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------------------------------------------------------

    def patchify(self, x: Tensor) -> Tensor:
        """Images (B, C, S, S) → patches (B, (S/p)², C·p²), row-major over the patch grid."""
        B, C, S, _ = x.shape  # C: the image's channels, or with a stem its channels plus the stem's
        p, g = self.patch_size, S // self.patch_size
        return x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, C * p * p)

    def unpatchify(self, patches: Tensor) -> Tensor:
        """Inverse of :meth:`patchify`: (B, (S/p)², C·p²) → (B, C, S, S)."""
        B = patches.shape[0]
        C, p, g = self.channels, self.patch_size, self.image_size // self.patch_size
        return patches.reshape(B, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, C, g * p, g * p)

    def _check(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Check the inputs (values on the CPU only, see the module docstring); return the times as (B,) tensors."""
        if not isinstance(xs, Mapping) or not isinstance(ts, Mapping):
            raise TypeError("xs and ts must be dicts keyed by modality name.")
        if set(xs) != set(self.names) or set(ts) != set(self.names):
            raise ValueError(
                f"{type(self).__name__} needs xs and ts for exactly {list(self.names)}; "
                f"got {sorted(xs)} and {sorted(ts)}."
            )
        img, txt = xs[self.image_name], xs[self.text_name]
        for name, x in ((self.image_name, img), (self.text_name, txt)):
            if not isinstance(x, Tensor):
                raise TypeError(f"inputs must be torch.Tensors; {name!r} is a {type(x).__name__}.")
        S, C = self.image_size, self.channels
        if img.ndim != 4 or tuple(img.shape[1:]) != (C, S, S):
            raise ValueError(f"xs[{self.image_name!r}] must have shape (B, {C}, {S}, {S}); got {tuple(img.shape)}.")
        if not img.is_floating_point():
            raise TypeError(f"xs[{self.image_name!r}] must be a float tensor; got dtype {img.dtype}.")
        vectors = self.text_input == "vectors"
        if vectors:
            if not txt.is_floating_point():
                raise TypeError(
                    f"xs[{self.text_name!r}] must be float caption vectors (B, L, V); got dtype {txt.dtype}."
                )
            if txt.ndim != 3 or not 1 <= txt.shape[1] <= self.text_len or txt.shape[2] != self.vocab_size:
                raise ValueError(
                    f"xs[{self.text_name!r}] must have shape (B, L, {self.vocab_size}) with 1 ≤ L ≤ "
                    f"text_len={self.text_len}; got {tuple(txt.shape)}."
                )
        elif txt.is_floating_point() or txt.dtype == torch.bool or txt.is_complex():
            raise TypeError(f"xs[{self.text_name!r}] must hold integer token ids (torch.long); got dtype {txt.dtype}.")
        elif txt.ndim != 2 or not 1 <= txt.shape[1] <= self.text_len:
            raise ValueError(
                f"xs[{self.text_name!r}] must have shape (B, L) with 1 ≤ L ≤ text_len={self.text_len}; "
                f"got {tuple(txt.shape)}."
            )
        B = img.shape[0]
        if txt.shape[0] != B:
            raise ValueError(f"batch sizes differ: {self.image_name!r} has {B}, {self.text_name!r} has {txt.shape[0]}.")
        device = self.patch_in.weight.device
        # Times: a (B,) tensor or a plain number (broadcast to the batch, as the other networks take them); values
        # (in [0, 1], no NaN) are checked for CPU tensors and numbers only.
        times = {}
        for name in self.names:
            t = ts[name]
            values = net_checks_values(t) if isinstance(t, Tensor) else True
            times[name] = check_time(t, batch=B, name=f"ts[{name!r}]", device=device, values=values)
        for name, x in ((self.image_name, img), (self.text_name, txt), *times.items()):
            if x.device != device:
                raise ValueError(f"input {name!r} is on {x.device} but the network is on {device}; move one of them.")
        # Value checks need the values on the host: free for CPU tensors, a synchronisation per call on CUDA. So
        # they run on the CPU only (where tests and teaching run), and never inside a torch.compile trace.
        if net_checks_values(img) and img.numel() and not bool(torch.isfinite(img).all()):
            raise ValueError(f"xs[{self.image_name!r}] holds NaN or infinite values; expected finite pixels.")
        if vectors:
            if net_checks_values(txt) and txt.numel() and not bool(torch.isfinite(txt).all()):
                raise ValueError(f"xs[{self.text_name!r}] holds NaN or infinite values; expected finite vectors.")
        elif net_checks_values(txt) and txt.numel() and (txt.min() < 0 or txt.max() > self.vocab_size):
            raise ValueError(
                f"xs[{self.text_name!r}] holds token ids in [{txt.min().item()}, {txt.max().item()}]; expected ids "
                f"in [0, {self.vocab_size}] ({self.vocab_size} is the mask)."
            )
        return times

    def forward(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Denoise both modalities at once.

        Args:
            xs: ``{image_name: (B, C, S, S) float, text_name: (B, L) long in [0, V]}`` (with ``text_input="vectors"``:
                ``text_name: (B, L, V) float``).
            ts: ``{image_name: (B,), text_name: (B,)}``, each modality's own time in [0, 1] (a plain number is
                broadcast to the batch).
        Returns:
            ``{image_name: (B, C, S, S), text_name: (B, L, V)}`` in float32.
        """
        ts = self._check(xs, ts)
        img, txt = xs[self.image_name], xs[self.text_name]
        L = txt.shape[1]
        # Per-modality conditioning c_m from its own clock (plus, optionally, a map of both clocks).
        codes = [sinusoidal_embedding(ts[n], self.freq_dim) for n in self.names]  # 2 × (B, freq_dim)
        dtype = self.patch_in.weight.dtype
        conds = [mlp(code.to(dtype)) for mlp, code in zip(self.time, codes, strict=True)]  # 2 × (B, time_dim)
        if self.cross is not None:
            both = torch.cat(codes, dim=-1).to(dtype)  # (B, 2·freq_dim)
            conds = [c + cross(both) for c, cross in zip(conds, self.cross, strict=True)]

        img = img.to(dtype)
        if self.stem is not None:  # the raw pixels and the stem's local features, patchified together
            img = torch.cat([img, self.stem(img)], dim=1)
        h_img = self.patch_in(self.patchify(img)) + self.pos_image + self.modality[0]  # (B, P, D)
        h_txt = (
            self.tok_in(txt.to(dtype) if self.text_input == "vectors" else txt) + self.pos_text[:L] + self.modality[1]
        )
        h = [h_img, h_txt]  # (B, P, D), (B, L, D): one joint sequence, kept as its two segments
        for block in self.blocks:
            h = block(h, conds)

        out = []
        for part, c, ada, head in zip(h, conds, self.ada_out, (self.patch_out, self.tok_out), strict=True):
            shift, scale = ada(F.silu(c))[:, None, :].chunk(2, dim=-1)  # (B, 1, D) each
            out.append(head(self.norm_out(part) * (1 + scale) + shift).float())
        return {self.image_name: self.unpatchify(out[0]), self.text_name: out[1]}  # (B, C, S, S), (B, L, V)
