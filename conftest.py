"""Settings for every test and doctest (tests/ and the package's docstring examples)."""

import os
import tempfile

# Never reach for the Hub: each id would otherwise take ~23 s to fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Data sets built by tests are cached in a fresh folder, not the user's cache.
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="mirnet-hf-datasets-"))
