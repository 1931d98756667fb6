"""Bad configuration stops ryu-manager at start with a message naming the option, and a
cluster store that does not answer does not stop it: it runs as a follower that changes
nothing and says why."""

import pytest

from sdn_app.lab.emulation import ControllerProcess, free_port, wait_until


@pytest.mark.parametrize("settings,said", [
    ({"cluster_store": "redis://127.0.0.1:6379"}, "cluster_store must look like etcd://"),
    ({"cluster_lease": "0"}, "cluster_lease"),
    ({"prometheus_port": "70000"}, "prometheus_port"),
    ({"policy": "fastest"}, "policy"),
])
def test_bad_settings_stop_the_controller_naming_the_option(tmp_path, settings, said):
    ctl = ControllerProcess(settings=settings, log_path=tmp_path / "controller.log")
    with pytest.raises(RuntimeError) as caught:
        ctl.start(timeout=20)
    ctl.workdir.cleanup()
    assert said in str(caught.value), str(caught.value)[-2000:]


def test_a_store_that_never_answers_leaves_a_follower_that_refuses_changes(tmp_path):
    settings = {"cluster_store": "etcd://127.0.0.1:%d" % free_port()}
    with ControllerProcess(settings=settings, log_path=tmp_path / "controller.log") as ctl:
        cluster = wait_until(lambda: (lambda c: c if c["store_error"] else None)(
            ctl.get("/v1/cluster")), 10)
        assert cluster and cluster["role"] == "follower" and not cluster["store_reachable"]
        status, body = ctl.request("/v1/policy", "PUT", b'{"policy": "ecmp"}')
        assert status == 409 and body["leader"] is None, body
        assert ctl.get("/v1/topology")["switches"] == []
        assert ctl.alive()
        assert wait_until(lambda: "cluster store unreachable" in ctl.log_path.read_text(), 15)
        assert "Traceback" not in ctl.log_path.read_text()
