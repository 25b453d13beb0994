"""Shared pytest set-up."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Every test uses tiny tensors: one thread avoids thread contention on a 2-core (often shared) machine, which made
    # the suite several times faster there. Restored at the end of the session.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
