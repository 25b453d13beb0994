"""Experiments, one per module, shared by a notebook and its benchmark (makemore-style: one entry point each).

* :mod:`~diffuse_edu.recipes.continuous` — notebook 01 and ``bench_continuous``: a 2D mixture with an exact score and
  8×8 digits.
* :mod:`~diffuse_edu.recipes.text` — notebook 02 and ``bench_discrete``: masked, uniform and autoregressive models of
  surnames at one budget, bits per character.
* :mod:`~diffuse_edu.recipes.toy_joint` — notebook 03 and ``bench_decoupled``: a (point, label) joint model, its
  training clocks, their ablation and guidance.
* :mod:`~diffuse_edu.recipes.judges` — the judges metrics need (digit features, shape attributes), trained once and
  cached.

Recipes sit on top of the package: they may import every layer, nothing imports them (``tests/test_layers.py``).
Entry points take keyword arguments with the notebooks' defaults, cache what they train (:mod:`diffuse_edu.cache`),
and build their tensors on the network's device unless ``device=`` says otherwise.
"""
