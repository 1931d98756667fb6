import re

import pytest

from sdn_app.lab.emulation import ControllerProcess


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture
def controller(tmp_path):
    """Our app under ryu-manager on free ports; must still be alive at the end, with no
    traceback and no switch refusing what it sent (the switch would then not hold the
    plan the controller believes it holds)."""
    with ControllerProcess(log_path=tmp_path / "controller.log") as ctl:
        yield ctl
        assert ctl.alive(), "controller died:\n" + ctl.log_tail()
        log = ctl.log_path.read_text()
        assert "Traceback" not in log, ctl.log_tail(80)
        refused = re.findall(r".*switch \S+ (?:refused|reported error).*", log)
        assert not refused, "\n".join(refused[:20])
