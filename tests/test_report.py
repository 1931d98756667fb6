"""The terminal view (sdn-topology, lab/report.py): once, watched, and with the
controller away."""

import pytest

from sdn_app.lab import report

TOPOLOGY = {"switches": [{"dpid": "0000000000000001", "connected": True,
                          "ports": [{"role": "link", "live": True},
                                    {"role": "edge", "live": False}]}],
            "links": [], "hosts": [{"mac": "00:00:00:00:00:01", "ipv4": ["10.0.0.1"],
                                    "dpid": "0000000000000001", "port_no": 2}]}


def test_once_prints_the_view(capsys):
    assert report.main(["--url", "http://x"], read=lambda url: TOPOLOGY) == 0
    out = capsys.readouterr().out
    assert "Switches (1)" in out and "10.0.0.1" in out


def test_once_with_the_controller_away_fails_with_a_reason(capsys):
    def refused(url):
        raise ConnectionRefusedError("refused")
    assert report.main(["--url", "http://x"], read=refused) == 1
    assert "cannot read http://x/v1/topology" in capsys.readouterr().err


def test_watch_redraws_rides_out_an_outage_and_ends_on_ctrl_c(capsys):
    answers = [TOPOLOGY, OSError("down"), TOPOLOGY]
    naps = []

    def read(url):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(seconds):
        naps.append(seconds)
        if not answers:
            raise KeyboardInterrupt
    assert report.main(["--watch", "0.5"], read=read, sleep=sleep) == 0
    out = capsys.readouterr().out
    assert naps == [0.5, 0.5, 0.5]
    assert out.count("\x1b[2J") == 3 and out.count("Switches (1)") == 2
    assert "cannot read" in out


def test_watch_needs_a_positive_period():
    with pytest.raises(SystemExit):
        report.main(["--watch", "0"], read=lambda url: TOPOLOGY)
