import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from serve import ROOT, LocalServer

# Property tests (tests/test_decode_properties.py): a few hundred bodies each in `make test`,
# thousands under `make reliability` (HYPOTHESIS_PROFILE=reliability). No deadline: the
# machine may be busy, and a slow example is not a wrong one.
settings.register_profile("quick", max_examples=150, deadline=None)
settings.register_profile("reliability", max_examples=1500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

REAL_CAPTURES = ROOT.parent / "shared" / "data" / "real_pd_signals.npy"
ARCHIVE = ROOT / "model_store" / "pd_segmenter.mar"
# The servers under test keep no shared cache a developer's shell may point at (docs/cache.md).
ISOLATED = {"PD_CACHE_URL": ""}


@pytest.fixture(scope="session")
def server():
    """One real TorchServe for the integration tests, on free loopback ports."""
    if not ARCHIVE.is_file():
        pytest.fail(f"{ARCHIVE} is missing: `make test` builds it (make archive)")
    with LocalServer(environment=ISOLATED) as running:
        yield running


@pytest.fixture(scope="session")
def onnx_model_store(tmp_path_factory) -> Path:
    """A model store holding the same weights packed for ONNX Runtime (make archive RUNTIME=onnx)."""
    from export import export

    store = tmp_path_factory.mktemp("onnx-store")
    export(ROOT / "model_store" / "weights", "pd_segmenter", store, "1.0", runtime="onnx")
    return store


@pytest.fixture(scope="module")
def onnx_server(onnx_model_store):
    """A second real TorchServe, serving the ONNX archive (for one module's tests)."""
    with LocalServer(model_store=onnx_model_store, environment=ISOLATED) as running:
        yield running


@pytest.fixture(scope="session")
def real_captures() -> np.ndarray:
    if not REAL_CAPTURES.is_file():
        pytest.fail(f"{REAL_CAPTURES} is missing (shared/ sits beside the checkout)")
    return np.load(REAL_CAPTURES)
