"""REST answers, through Ryu's own WSGI router, on a model with no switches attached."""

import json
import re

import networkx as nx
import pytest
import rest_fuzz
import webob
from fake_controller import FakeApp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryu.app.wsgi import WSGIApplication
from shipped_topologies import model_of

from sdn_app.core import view as view_module
from sdn_app.core.admission import Admission
from sdn_app.core.scaling import ScalingSpec
from sdn_app.core.services import ServiceTable
from sdn_app.core.te import compute_next_hops
from sdn_app.core.topology import Port
from sdn_app.core.view import NetworkView
from sdn_app.ryuapp.rest import (
    MAX_BODY_BYTES,
    Access,
    RestApi,
    read_token,
    register_fallback,
    register_rest,
)


def rest_app(app, token=""):
    wsgi = WSGIApplication()
    register_rest(wsgi, NetworkView(app), Access(token))
    register_fallback(wsgi)
    return wsgi


@pytest.fixture(scope="module")
def api():
    topo, macs = model_of("fattree,4")
    app = FakeApp(topo)
    wsgi = rest_app(app)

    def get(path, method="GET", body=None):
        req = webob.Request.blank(path, method=method, remote_addr="127.0.0.1")
        if body is not None:
            req.body = body
        resp = req.get_response(wsgi)
        assert resp.content_type == "application/json", resp.body
        return resp.status_code, json.loads(resp.body)
    get.app = app
    return get


def test_topology(api):
    status, body = api("/v1/topology")
    assert status == 200
    assert (len(body["switches"]), len(body["links"]), len(body["hosts"])) == (20, 64, 16)


def test_node_link_loads_into_networkx(api):
    status, body = api("/v1/topology?format=node-link")
    assert status == 200
    graph = nx.node_link_graph(body, directed=True, multigraph=True)
    assert graph.number_of_nodes() == 36


def test_switch_hosts_links(api):
    assert api("/v1/switches/0000000000030101")[1]["dpid"] == "0000000000030101"
    assert api("/v1/switches/0x30101")[0] == 200
    assert len(api("/v1/switches")[1]) == 20
    assert len(api("/v1/hosts")[1]) == 16
    assert api("/v1/hosts/10.0.0.3")[1]["mac"] == "00:00:00:00:00:03"
    assert all(lk["state"] == "up" for lk in api("/v1/links")[1])


def test_paths_by_ip_and_mac(api):
    status, body = api("/v1/paths?src=10.0.0.1&dst=00:00:00:00:00:10")
    assert status == 200
    assert body["hops"][0]["in_port"] == 1 and len(body["hops"]) == 5


@pytest.mark.parametrize("path,status", [
    ("/v1/switches/00000000deadbeef", 404),
    ("/v1/switches/not-a-dpid", 400),
    ("/v1/switches/12345678901234567", 400),
    ("/v1/hosts/10.9.9.9", 404),
    ("/v1/hosts/00:00:zz:00:00:01", 400),
    ("/v1/paths", 400),
    ("/v1/paths?src=10.0.0.1", 400),
    ("/v1/paths?src=10.0.0.1&dst=10.0.0.99", 404),
    ("/v1/paths?src=10.0.0.1&dst=10.0.0.2&bogus=1", 400),
    ("/v1/topology?format=xml", 400),
    ("/v1/topology?frmat=node-link", 400),
])
def test_bad_requests_get_json_errors(api, path, status):
    got, body = api(path)
    assert got == status and body["error"]


def test_a_failing_handler_answers_500_and_the_api_keeps_working(api, monkeypatch):
    def broken(topo):
        raise RuntimeError("boom")
    monkeypatch.setattr(view_module, "topology_dict", broken)
    status, body = api("/v1/topology")
    assert status == 500 and "internal error" in body["error"]
    monkeypatch.undo()
    assert api("/v1/topology")[0] == 200


def test_unreachable_path_is_404(api):
    topo, _ = model_of("diamond")
    for port in (2, 3):
        topo.port_changed(0x10101, Port(port, live=False), 1000)
    wsgi = rest_app(FakeApp(topo))
    resp = webob.Request.blank("/v1/paths?src=10.0.0.1&dst=10.0.0.2").get_response(wsgi)
    assert resp.status_code == 404 and "no path" in json.loads(resp.body)["error"]


def test_policy_can_be_read_and_changed(api):
    assert api("/v1/policy")[1]["policy"] == "shortest"
    assert api("/v1/policy")[1]["reconciling"] is False
    assert api("/v1/policy")[1]["packet_ins"] == 7
    assert api("/v1/policy")[1]["mods_sent"] == {"flow_mods": 3, "group_mods": 1}
    status, body = api("/v1/policy", "PUT", b'{"policy": "ecmp"}')
    assert status == 200 and body["policy"] == "ecmp" and body["select_groups"] > 0
    paths = api("/v1/paths?src=10.0.0.1&dst=10.0.0.16")[1]["paths"]
    assert len(paths) == 4 and all(p["share"] == 0.25 for p in paths)
    api("/v1/policy", "PUT", b'{"policy": "shortest"}')


@pytest.mark.parametrize("body", [b"", b"{bad json", b"[]", b'"ecmp"', b'{"policy": 3}',
                                  b'{"policy": "fastest"}', b'{"policy": "ecmp", "x": 1}',
                                  b'{"Policy": "ecmp"}', b"\xff\xfe"])
def test_bad_policy_bodies_get_400_and_change_nothing(api, body):
    status, reply = api("/v1/policy", "PUT", body)
    assert status == 400 and reply["error"]
    assert api("/v1/policy")[1]["policy"] == "shortest"
    assert api("/v1/policy")[1]["reconciling"] is False


def test_stats_and_link_rates(api):
    assert api("/v1/stats/0000000000030101")[1][0]["port_no"] == 1
    assert api("/v1/stats/00000000000000ff")[0] == 404
    link = api("/v1/links")[1][0]
    assert {"capacity_bps", "rate_bps", "utilization"} <= set(link)


def test_demand_lists_what_was_measured_largest_first(api):
    status, rows = api("/v1/demand")
    assert status == 200
    assert rows == [{"src": "0000000000010101", "dst": "0000000000010001", "bps": 5e6},
                    {"src": "0000000000010001", "dst": "0000000000010101", "bps": 2e6}]
    assert api("/v1/demand?x=1")[0] == 400


def test_admission_reports_off_or_its_counts_and_refusals(api):
    assert api("/v1/admission") == (200, {"enabled": False})
    topo = api.app.topo
    capacity = min(topo.capacity(lk.src, lk.src_port) for lk in topo.links())
    admission = Admission(utilization=0.5, stream_bps=0.3 * capacity)  # no link takes two
    hops = compute_next_hops(topo, "shortest")
    ingress, egress = 0x30101, 0x30201
    assert admission.decide(topo, hops, ("10.0.0.1", "10.0.0.5", 4000, 9100), ingress,
                            egress, 9.0).admitted
    assert not admission.decide(topo, hops, ("10.0.0.1", "10.0.0.5", 4001, 9100), ingress,
                                egress, 9.5).admitted
    api.app.admission = admission
    try:
        status, body = api("/v1/admission")
    finally:
        api.app.admission = None
    assert status == 200 and body["enabled"] and body["admitted"] == 1 and body["refused"] == 1
    assert {r["dpid"] for r in body["reserved"]} and body["reserved"][0]["bps"] == 0.3 * capacity
    refusal, = body["recent_refusals"]
    assert refusal["stream"] == ["10.0.0.1", "10.0.0.5", 4001, 9100]
    assert refusal["ingress"] == "0000000000030101" and refusal["age"] == 0.5
    assert "would be at" in refusal["reason"]
    assert api("/v1/admission?x=1")[0] == 400


def test_services_over_rest(api):
    api.app.services = ServiceTable()
    api.app.changes = []
    service = {"name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
               "backends": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.3", "weight": 2}]}
    status, body = api("/v1/services", "POST", json.dumps(service).encode())
    assert status == 201 and [b["state"] for b in body["backends"]] == ["down", "down"]
    assert api("/v1/services")[1][0]["name"] == "web"
    assert api("/v1/services/web")[1]["vip_mac"] == "02:5d:0a:00:00:64"
    assert api("/v1/services/web")[1]["requests_per_s"] == 12.5
    assert api("/v1/services", "POST", json.dumps(service).encode())[0] == 409
    host_vip = dict(service, name="b", vip=next(iter(api.app.topo.hosts.values())).ips[0])
    assert api("/v1/services", "POST", json.dumps(host_vip).encode())[0] == 409
    for bad in (b"{", b"[]", json.dumps(dict(service, port="80")).encode()):
        status, body = api("/v1/services", "POST", bad)
        assert status == 400 and "error" in body
    assert api("/v1/services/nope")[0] == 404
    backend = "/v1/services/web/backends"
    assert api(backend, "POST", b'{"ip": "10.0.0.4", "port": 8080}')[0] == 201
    assert api(backend, "POST", b'{"ip": "10.0.0.4"}')[0] == 409
    assert api(backend + "/10.0.0.4", "PUT", b'{"weight": 5}')[1]["backends"][2]["weight"] == 5
    assert api(backend + "/10.0.0.4", "PUT", b'{"weight": 5000}')[0] == 400
    assert api(backend + "/10.0.0.4", "PUT", b'{"colour": 1}')[0] == 400
    status, body = api(backend + "/10.0.0.4", "PUT", b'{"state": "draining"}')
    assert body["backends"][2]["state"] == "draining"
    assert api(backend + "/10.0.0.9", "PUT", b'{"weight": 1}')[0] == 404
    assert api(backend + "/10.0.0.4", "DELETE")[0] == 200
    assert api(backend + "/10.0.0.4", "DELETE")[0] == 404
    assert api("/v1/services/web", "DELETE")[0] == 200
    assert api("/v1/services")[1] == []
    assert [kind for kind, _ in api.app.changes] == [
        "service_added", "backend_added", "backend_changed", "backend_changed",
        "backend_removed", "service_removed"]


def test_scaling_over_rest(api):
    api.app.services = ServiceTable()
    api.app.changes = []
    service = {"name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
               "backends": [{"ip": "10.0.0.2"}],
               "scaling": {"policy": "reactive", "max_backends": 3,
                           "standby": [{"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}]}}
    assert api("/v1/services", "POST", json.dumps(service).encode())[0] == 201
    status, body = api("/v1/services/web/scaling")
    assert status == 200 and body["policy"]["policy"] == "reactive"
    assert body["current"] == 1 and body["series"] == [] and body["decisions"] == []
    assert [b["ip"] for b in body["policy"]["standby"]] == ["10.0.0.3", "10.0.0.4"]
    status, body = api("/v1/services/web/scaling", "PUT",
                       b'{"policy": "predictive", "target": 50}')
    assert status == 200 and body["policy"]["policy"] == "predictive"
    assert body["policy"]["max_backends"] == 3, "fields left out keep their values"
    for bad in (b"{", b'{"policy": "magic"}', b'{"max_backends": 0, "min_backends": 1}',
                b'{"standby": [{"ip": "10.0.0.100"}]}', b'{"x": 1}'):
        status, body = api("/v1/services/web/scaling", "PUT", bad)
        assert status == 400 and "error" in body, bad
    assert api("/v1/services/nope/scaling")[0] == 404
    assert api("/v1/services/nope/scaling", "PUT", b"{}")[0] == 404
    assert [kind for kind, _ in api.app.changes] == ["service_added", "scaling_changed"]
    api("/v1/services/web", "DELETE")


def test_events(api):
    assert [e["seq"] for e in api("/v1/events")[1]] == [1, 2, 3, 4, 5]
    assert [e["seq"] for e in api("/v1/events?since=3")[1]] == [4, 5]
    assert [e["seq"] for e in api("/v1/events?limit=2")[1]] == [4, 5]
    for bad in ("?since=x", "?limit=0", "?limit=-1", "?foo=1"):
        assert api("/v1/events" + bad)[0] == 400


@pytest.mark.parametrize("method,path,status,allow", [
    ("GET", "/v1/nope", 404, None),
    ("GET", "/", 404, None),
    ("DELETE", "/v1/topology", 405, "GET"),
    ("POST", "/v1/policy", 405, "GET, PUT"),
    ("PUT", "/v1/services/web/backends", 405, "POST"),
])
def test_unknown_routes_and_methods_answer_json(method, path, status, allow):
    topo, _ = model_of("leafspine,2,2,2")
    wsgi = rest_app(FakeApp(topo))
    resp = webob.Request.blank(path, method=method, remote_addr="127.0.0.1").get_response(
        wsgi)
    assert resp.status_code == status and resp.content_type == "application/json"
    assert json.loads(resp.body)["error"]
    assert resp.headers.get("Allow") == allow


def test_a_body_over_the_limit_is_refused_with_413(api):
    status, body = api("/v1/policy", "PUT", b" " * (MAX_BODY_BYTES + 1))
    assert status == 413 and "bytes" in body["error"]
    assert api("/v1/policy")[1]["policy"] == "shortest", "state unchanged"


def test_changes_need_the_token_or_else_loopback():
    topo, _ = model_of("leafspine,2,2,2")
    app = FakeApp(topo)
    body = json.dumps({"policy": "ecmp"}).encode()

    def put(wsgi, remote, auth=None):
        req = webob.Request.blank("/v1/policy", method="PUT", remote_addr=remote)
        req.body = body
        if auth:
            req.headers["Authorization"] = auth
        resp = req.get_response(wsgi)
        assert resp.content_type == "application/json"
        return resp.status_code
    open_api = rest_app(app)
    assert put(open_api, "10.1.2.3") == 403, "no token: loopback only"
    assert app.policy == "shortest"
    assert put(open_api, "::1") == 200 and app.policy == "ecmp"
    guarded = rest_app(app, token="s3cret")
    assert put(guarded, "127.0.0.1") == 401, "a token configured: loopback needs it too"
    assert put(guarded, "10.1.2.3", "Bearer wrong") == 403
    assert put(guarded, "10.1.2.3", "Bearer s3cret") == 200
    reads = webob.Request.blank("/v1/policy", remote_addr="10.1.2.3").get_response(guarded)
    assert reads.status_code == 200, "reading needs no token"


def test_the_token_file_gives_the_token(tmp_path):
    path = tmp_path / "token"
    path.write_text("abc123\n")
    assert read_token("ignored", str(path)) == "abc123"
    assert read_token("t", "") == "t"
    path.write_text("\n")
    with pytest.raises(ValueError):
        read_token("", str(path))
    with pytest.raises(OSError):
        read_token("", str(tmp_path / "missing"))


def test_a_disconnected_switch_can_be_forgotten_and_a_connected_one_not():
    topo, _ = model_of("leafspine,2,2,2")
    app = FakeApp(topo)
    forgotten = []
    app.switch_forgotten = lambda dpid, why: forgotten.append((dpid, why))
    wsgi = rest_app(app)

    def call(method, path):
        resp = webob.Request.blank(path, method=method, remote_addr="127.0.0.1") \
            .get_response(wsgi)
        return resp.status_code, json.loads(resp.body)
    leaf = sorted(topo.switches)[-1]
    path = "/v1/switches/%016x" % leaf
    status, body = call("DELETE", path)
    assert status == 409 and "connected" in body["error"]
    topo.switch_disconnected(leaf, 5.0)
    status, body = call("DELETE", path)
    assert status == 200 and body["dpid"] == "%016x" % leaf
    assert forgotten == [(leaf, "asked over REST")]
    assert call("GET", path)[0] == 404
    assert all(h["dpid"] != "%016x" % leaf for h in call("GET", "/v1/hosts")[1])
    assert call("DELETE", path)[0] == 404, "gone already"


def test_a_port_reset_forgets_its_hosts_and_says_so():
    topo, _ = model_of("leafspine,2,2,2")
    app = FakeApp(topo)
    reset = []
    app.port_reset = lambda dpid, port_no: reset.append((dpid, port_no))
    wsgi = rest_app(app)

    def call(path, method="POST", remote="127.0.0.1"):
        resp = webob.Request.blank(path, method=method, remote_addr=remote) \
            .get_response(wsgi)
        return resp.status_code, json.loads(resp.body)
    host = next(iter(topo.hosts.values()))
    path = "/v1/switches/%016x/ports/%d/reset" % (host.dpid, host.port)
    assert call(path, remote="10.0.0.9")[0] == 403, "a change: loopback or token only"
    assert host.mac in topo.hosts
    status, body = call(path)
    assert status == 200 and body["port_no"] == host.port and body["role"] == "edge"
    assert body["carried_hosts"] is False and host.mac not in topo.hosts
    assert reset == [(host.dpid, host.port)]
    assert call("/v1/switches/%016x/ports/999/reset" % host.dpid)[0] == 404
    assert call("/v1/switches/%016x/ports/x1/reset" % host.dpid)[0] == 400
    assert call("/v1/switches/77/ports/1/reset")[0] == 404
    assert call(path, method="GET")[0] == 405
    assert reset == [(host.dpid, host.port)], "a refused request changes nothing"


def served_routes() -> set:
    """(path, method) of every route RestApi serves, from Ryu's route decorators."""
    out = set()
    for member in vars(RestApi).values():
        info = getattr(member, "routing_info", None)
        if info:
            out |= {(info["path"], method.lower()) for method in info["methods"]}
    return out


def test_the_openapi_description_covers_every_route_and_no_other(api):
    status, document = api("/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    described = {(path, method) for path, ops in document["paths"].items()
                 for method in ops}
    assert described == served_routes()
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            named = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert named == set(re.findall(r"{(\w+)}", path)), (path, method)
            assert "400" in op["responses"] and "405" in op["responses"]
            if method in ("post", "put", "delete"):
                assert {"401", "403"} <= set(op["responses"]), (path, method)
    scaling = document["components"]["schemas"]["Scaling"]["properties"]
    assert set(scaling) == set(ScalingSpec().to_dict()), "every scaling field, no other"


def state_of(wsgi) -> str:
    """Everything a client can read that a request could change."""
    return json.dumps([read(wsgi, path) for path in (
        "/v1/topology", "/v1/services", "/v1/policy", "/v1/services/web/scaling")])


def read(wsgi, path):
    return json.loads(webob.Request.blank(path).get_response(wsgi).body)


SERVICE = {"name": "web", "vip": "10.0.0.100", "port": 80, "protocol": "tcp",
           "backends": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.3", "weight": 2}],
           "scaling": {"standby": [{"ip": "10.0.0.4"}]}}


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_fuzzed_requests_get_json_never_a_5xx_and_a_refusal_changes_nothing(data):
    topo, _ = model_of("leafspine,2,2,2")
    app = FakeApp(topo)
    app.services, app.changes = ServiceTable(), []
    wsgi = rest_app(app)
    assert webob.Request.blank("/v1/services", method="POST", remote_addr="127.0.0.1",
                               body=json.dumps(SERVICE).encode()).get_response(wsgi) \
        .status_code == 201
    host = next(iter(topo.hosts.values()))
    known = {"dpid": ["%016x" % d for d in sorted(topo.switches)],
             "port_no": [str(host.port), "1"], "key": [host.mac] + host.ips,
             "name": ["web"], "ip": ["10.0.0.2", "10.0.0.3"]}
    for _ in range(3):  # a few in a row: a change may set up the next request
        method, path, body, headers = data.draw(rest_fuzz.requests(known))
        remote = data.draw(st.sampled_from(["127.0.0.1", "10.0.0.9"]))
        before = state_of(wsgi)
        req = webob.Request.blank(path, method=method, remote_addr=remote, headers=headers)
        if body is not None:
            req.body = body
        resp = req.get_response(wsgi)
        assert resp.status_code < 500, (method, path, body, resp.body)
        if method == "HEAD":
            continue
        assert resp.content_type == "application/json", (method, path, resp.body)
        answer = json.loads(resp.body)
        if resp.status_code >= 400:
            assert isinstance(answer, dict) and answer.get("error"), answer
            assert state_of(wsgi) == before, ("a refused request changed state",
                                               method, path, body)
        if remote != "127.0.0.1" and method in ("POST", "PUT", "DELETE", "PATCH"):
            assert resp.status_code in (403, 404, 405), (method, path, resp.status_code)


def test_a_follower_refuses_changes_naming_the_leader_and_still_answers_reads(api):
    from sdn_app.core.cluster import NotLeader, StoreUnavailable
    assert api("/v1/cluster")[1]["role"] == "standalone"
    api.app.writable_error = NotLeader("c1", "http://h1:8080")
    try:
        status, body = api("/v1/policy", "PUT", b'{"policy": "ecmp"}')
        assert status == 409 and (body["leader"], body["leader_rest"]) == ("c1", "http://h1:8080")
        assert "follower" in body["error"]
        assert api("/v1/policy")[1]["policy"] == "shortest", "refused: nothing changed"
        assert api("/v1/topology")[0] == 200
        api.app.writable_error = StoreUnavailable("no quorum")
        status, body = api("/v1/services", "POST", b'{"name": "x"}')
        assert status == 503 and "no quorum" in body["error"]
    finally:
        api.app.writable_error = None
