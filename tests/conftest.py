"""Shared pytest set-up: one torch thread, and the hypothesis profiles of the fuzz suite (tests/test_fuzz.py)."""

import pytest
import torch

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the dev extra brings hypothesis; without it only tests/test_fuzz.py fails (to import)
    settings = None

if settings is not None:
    # The fuzz suite runs under "default" (40 derandomized examples per entry point: reproducible in CI, < 60 s on two
    # cores); `pytest --hypothesis-profile=long` runs 1000 per entry point, freshly random, for a longer local search.
    _FUZZ = dict(
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    settings.register_profile("default", max_examples=40, derandomize=True, **_FUZZ)
    settings.register_profile("long", max_examples=1000, derandomize=False, print_blob=True, **_FUZZ)
    settings.load_profile("default")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Every test uses tiny tensors: one thread avoids thread contention on a 2-core (often shared) machine, which made
    # the suite several times faster there. Restored at the end of the session.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
