import pytest

from sdn_app.lab.emulation import ControllerProcess


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture
def controller(tmp_path):
    """Our app under ryu-manager on free ports; must still be alive at the end."""
    with ControllerProcess(log_path=tmp_path / "controller.log") as ctl:
        yield ctl
        assert ctl.alive(), "controller died:\n" + ctl.log_tail()
        assert "Traceback" not in ctl.log_path.read_text(), ctl.log_tail(80)
