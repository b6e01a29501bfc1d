import numpy as np
import pytest

from serve import ROOT, LocalServer

REAL_CAPTURES = ROOT.parent / "shared" / "data" / "real_pd_signals.npy"
ARCHIVE = ROOT / "model_store" / "pd_segmenter.mar"


@pytest.fixture(scope="session")
def server():
    """One real TorchServe for the integration tests, on free loopback ports."""
    if not ARCHIVE.is_file():
        pytest.fail(f"{ARCHIVE} is missing: `make test` builds it (make archive)")
    with LocalServer() as running:
        yield running


@pytest.fixture(scope="session")
def real_captures() -> np.ndarray:
    if not REAL_CAPTURES.is_file():
        pytest.fail(f"{REAL_CAPTURES} is missing (shared/ sits beside the checkout)")
    return np.load(REAL_CAPTURES)
