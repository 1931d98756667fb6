"""The OpenAPI 3.0 description of the REST API (rest.py), served at ``GET
/v1/openapi.json``.

Built from the core's own constants (policies, schedulers, roles, health kinds, the
scaling fields), so an enum stated there is not stated again here; tests/test_rest.py
checks that every route rest.py serves is described, and nothing else, and fuzzes the
API from this description.
"""

from __future__ import annotations

from dataclasses import fields

from ..core import scaling as scaling_module
from ..core import services as services_module
from ..core.te import POLICIES

DPID = {"name": "dpid", "in": "path", "required": True,
        "description": "datapath id, up to 16 hex digits (0x optional)",
        "schema": {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{1,16}$"}}
SERVICE_NAME = {"name": "name", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}
BACKEND_IP = {"name": "ip", "in": "path", "required": True,
              "schema": {"type": "string", "format": "ipv4"}}
IPV4 = {"type": "string", "format": "ipv4"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}

ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}}}

HEALTH = {"type": "object", "additionalProperties": False, "properties": {
    "kind": {"enum": list(services_module.HEALTH_KINDS)},
    "interval_ms": {"type": "integer", "minimum": 20, "maximum": 60000},
    "timeout_ms": {"type": "integer", "minimum": 10, "maximum": 60000},
    "rise": {"type": "integer", "minimum": 1, "maximum": 100},
    "fall": {"type": "integer", "minimum": 1, "maximum": 100},
    "agent_port": {"type": "integer", "minimum": 0, "maximum": 65535}}}

BACKEND = {"type": "object", "required": ["ip"], "additionalProperties": False,
           "properties": {
               "ip": IPV4, "port": PORT,
               "weight": {"type": "integer", "minimum": 0,
                          "maximum": services_module.MAX_WEIGHT},
               "role": {"enum": list(services_module.ROLES)},
               "max_connections": {"type": "integer", "minimum": 0,
                                   "maximum": 10_000_000}}}


def _scaling_schema() -> dict:
    """The pool-scaling policy: every ScalingSpec field, each optional in a PUT."""
    props = {}
    for spec_field in fields(scaling_module.ScalingSpec):
        name, default = spec_field.name, spec_field.default
        if name == "policy":
            props[name] = {"enum": list(scaling_module.POLICIES)}
        elif name == "metric":
            props[name] = {"enum": list(scaling_module.METRICS)}
        elif name == "standby":
            props[name] = {"type": "array", "items": {"$ref": "#/components/schemas/Backend"}}
        else:
            props[name] = {"type": "integer" if isinstance(default, int) else "number"}
    return {"type": "object", "additionalProperties": False, "properties": props}


SERVICE = {"type": "object", "additionalProperties": False,
           "required": ["name", "vip", "port", "protocol", "backends"],
           "properties": {
               "name": SERVICE_NAME["schema"], "vip": IPV4, "port": PORT,
               "protocol": {"enum": list(services_module.PROTOCOLS)},
               "scheduler": {"enum": list(services_module.SCHEDULERS)},
               "backends": {"type": "array",
                            "items": {"$ref": "#/components/schemas/Backend"}},
               "health": {"$ref": "#/components/schemas/Health"},
               "slow_start_ms": {"type": "integer", "minimum": 0, "maximum": 3_600_000},
               "drain_timeout_ms": {"type": "integer", "minimum": 0,
                                    "maximum": 86_400_000},
               "adaptive": {"type": "boolean"},
               "scaling": {"$ref": "#/components/schemas/Scaling"}}}

BACKEND_CHANGE = {"type": "object", "additionalProperties": False, "minProperties": 1,
                  "properties": {
                      "weight": BACKEND["properties"]["weight"],
                      "state": {"enum": [services_module.DRAINING, "active"]}}}


def _answers(*statuses: int, created: bool = False) -> dict:
    """The responses of an operation: its success, then the errors it can give."""
    why = {400: "malformed query or body", 401: "a token is configured and none was given",
           403: "wrong token, or (no token configured) not from loopback",
           404: "unknown switch, port, host, service or backend", 405: "method not allowed",
           409: "conflicts with the current state", 413: "body over 1 MiB"}
    out = {"201" if created else "200": {
        "description": "created" if created else "the answer",
        "content": {"application/json": {"schema": {}}}}}
    for status in sorted({400, 405, *statuses}):
        out[str(status)] = {"description": why[status], "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return out


def _op(summary: str, *statuses: int, params=(), body: str | None = None,
        created: bool = False, mutating: bool = False) -> dict:
    op = {"summary": summary, "parameters": list(params),
          "responses": _answers(*statuses, *((401, 403) if mutating else ()),
                                *((413,) if body else ()), created=created)}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/" + body}}}}
    if mutating:
        op["security"] = [{"bearer": []}, {}]
        # a follower refuses every change (409, naming the leader); a leader that cannot
        # reach the cluster store refuses what it could not record (503)
        op["responses"].setdefault("409", {"description": "conflict",
                                           "content": {"application/json": {
                                               "schema": {"$ref": "#/components/schemas/Error"}}}})
        op["responses"]["503"] = {"description": "the cluster store does not answer"}
    return op


def _query(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 0}}


def document() -> dict:
    """The whole description, as a JSON-ready dict."""
    host_key = {"name": "key", "in": "path", "required": True,
                "description": "a host's MAC or IPv4 address", "schema": {"type": "string"}}
    paths = {
        "/v1/openapi.json": {"get": _op("this description")},
        "/v1/topology": {"get": _op("switches, links and hosts", params=[_query(
            "format", {"enum": ["default", "node-link"]})])},
        "/v1/switches": {"get": _op("switches and their ports")},
        "/v1/switches/{dpid}": {
            "get": _op("one switch", 404, params=[DPID]),
            "delete": _op("forget a disconnected switch with its links and hosts", 404,
                          409, params=[DPID], mutating=True)},
        "/v1/switches/{dpid}/ports/{port_no}/reset": {
            "post": _op("forget a port's hosts, links and that it carried host traffic",
                        404, params=[DPID, _path("port_no")], mutating=True)},
        "/v1/hosts": {"get": _op("hosts learned")},
        "/v1/hosts/{key}": {"get": _op("one host", 404, params=[host_key])},
        "/v1/links": {"get": _op("links, up and down, with rate and utilization")},
        "/v1/paths": {"get": _op("the paths and shares between two hosts", 404, params=[
            _query("src", {"type": "string"}, True, "host MAC or IPv4 address"),
            _query("dst", {"type": "string"}, True, "host MAC or IPv4 address")])},
        "/v1/demand": {"get": _op("traffic entering per (ingress, destination switch)")},
        "/v1/admission": {"get": _op("admission control: limits, streams admitted and "
                                     "refused, the latest refusals")},
        "/v1/policy": {
            "get": _op("the traffic-engineering policy and the last recomputation"),
            "put": _op("change the policy", body="Policy", mutating=True)},
        "/v1/services": {
            "get": _op("services and their backends"),
            "post": _op("add a service", 409, body="Service", created=True,
                        mutating=True)},
        "/v1/services/{name}": {
            "get": _op("one service", 404, params=[SERVICE_NAME]),
            "delete": _op("remove a service", 404, params=[SERVICE_NAME], mutating=True)},
        "/v1/services/{name}/backends": {
            "post": _op("add a backend", 404, 409, params=[SERVICE_NAME], body="Backend",
                        created=True, mutating=True)},
        "/v1/services/{name}/backends/{ip}": {
            "put": _op("change a backend's weight or state", 404,
                       params=[SERVICE_NAME, BACKEND_IP], body="BackendChange",
                       mutating=True),
            "delete": _op("remove a backend", 404, params=[SERVICE_NAME, BACKEND_IP],
                          mutating=True)},
        "/v1/services/{name}/scaling": {
            "get": _op("the pool's scaling policy, measurements and forecast", 404,
                       params=[SERVICE_NAME]),
            "put": _op("change some or all of the scaling policy", 404, 409,
                       params=[SERVICE_NAME], body="Scaling", mutating=True)},
        "/v1/stats/{dpid}": {"get": _op("a switch's port counters and rates", 404,
                                        params=[DPID])},
        "/v1/cluster": {"get": _op("this node's role in the controller cluster, the "
                                   "leader, the generation and the members")},
        "/v1/events": {"get": _op("recent events, oldest first", params=[
            _query("since", {"type": "integer"}, description="only events after this seq"),
            _query("limit", {"type": "integer"}, description="at most this many")])},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "sdn_app REST API", "version": "1",
                 "description": "Every answer is JSON; errors are {\"error\": \"...\"}. "
                                "Changes need the bearer token when one is configured, "
                                "else come from loopback only."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR, "Health": HEALTH, "Backend": BACKEND,
                "BackendChange": BACKEND_CHANGE, "Scaling": _scaling_schema(),
                "Service": SERVICE,
                "Policy": {"type": "object", "required": ["policy"],
                           "additionalProperties": False,
                           "properties": {"policy": {"enum": list(POLICIES)}}}}},
    }
