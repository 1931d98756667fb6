import json
import socket
import threading

import pytest

from sdn_app.lab import probe


def trace(seqs, rate=1000.0, delay=0.002):
    return [(s, s / rate, s / rate + delay) for s in seqs]


def test_clean_stream():
    result = probe.analyse(trace(range(100)), sent=100)
    assert (result["lost"], result["duplicates"], result["reordered"]) == (0, 0, 0)
    assert result["delay_ms"]["p50"] == pytest.approx(2.0)
    assert result["longest_gap_ms"] == pytest.approx(1.0)


def test_a_loss_window_and_trailing_loss():
    seqs = [s for s in range(100) if not 40 <= s < 47]
    result = probe.analyse(trace(seqs), sent=103)
    assert result["lost"] == 7 + 3
    assert result["longest_lost_run"] == 7
    assert result["longest_gap_ms"] == pytest.approx(8.0)


def test_duplicates_and_reordering():
    arrivals = trace([0, 1, 3, 2, 2, 4])
    result = probe.analyse(arrivals)
    assert (result["duplicates"], result["reordered"], result["lost"]) == (1, 1, 0)


def test_foreign_packets_are_not_probes():
    assert probe.decode(b"hello world, not a probe at all......") is None
    assert probe.decode(probe.encode(3, 42, 1.5)) == (3, 42, 1.5)


def test_empty_trace():
    result = probe.analyse([], sent=10)
    assert result["lost"] == 10 and result["delay_ms"]["p50"] is None


def test_send_and_receive_over_loopback():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = {}
    listener = threading.Thread(target=lambda: got.update(arrivals=probe.receive(port, 1.0)))
    listener.start()
    import time
    time.sleep(0.2)
    probe.send("127.0.0.1", port, rate=500, seconds=0.4)
    listener.join()
    result = probe.analyse(got["arrivals"], sent=200)
    assert result["received"] == 200 and result["lost"] == 0


@pytest.mark.parametrize("argv", [["send", "--dst", "x", "--rate", "0", "--seconds", "1"],
                                  ["recv", "--seconds", "-1"], ["bogus"], ["send"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        probe.main(argv)
    assert exc.value.code == 2


def test_cli_output_is_json(capsys, monkeypatch):
    monkeypatch.setattr(probe, "receive", lambda port, seconds: trace(range(5)))
    assert probe.main(["recv", "--seconds", "1", "--sent", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["lost"] == 1
