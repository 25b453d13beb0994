"""Networks: single-modality nets take (x_t, t); joint nets take dicts of noisy states and times."""
