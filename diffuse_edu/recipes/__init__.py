"""Experiments, one per module, shared by a notebook and its benchmark (makemore-style: one entry point each)."""
