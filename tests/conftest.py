"""Suite-wide settings.

- In CI (``CI`` set) hypothesis runs derandomized, so a red build is reproducible from its
  log; locally it explores fresh examples every run.
- torch uses one thread: the suite's tensors are tiny, and on a 2-core machine a second
  thread mostly adds contention.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency, but tabular tests need none
    torch = None
if torch is not None:
    torch.set_num_threads(1)
