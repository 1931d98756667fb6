import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_collection_modifyitems(config, items):
    """End-to-end tests need root and Open vSwitch; skip them loudly elsewhere."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="end-to-end tests need root (Mininet + Open vSwitch)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
