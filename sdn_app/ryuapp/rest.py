"""REST queries, served by Ryu's WSGI server (``--wsapi-port``, default 8080).

Handlers only parse requests and call the read-only view (core/view.py); every answer
is JSON, ``{"error": "..."}`` when it is one: unknown switches, hosts and routes 404, a
known route with another method 405 (with ``Allow``), malformed queries and bodies 400,
a body over MAX_BODY_BYTES 413; an unexpected failure is logged and answered with 500,
and never reaches the controller's event loop.

Requests that change something (POST, PUT, DELETE) need ``Authorization: Bearer
<rest_token>`` when a token is configured (401 without it, 403 with a wrong one), and
without one are accepted from loopback only (403), so a controller started with no
token is not open to its whole network.  In a cluster only the leader changes
anything: a follower answers 409 naming the leader and its REST address, and a leader
that cannot reach the store answers 503 (it could not record the change).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import logging

from ryu.app.wsgi import ControllerBase, Response, route

from ..core.cluster import NotLeader, StoreUnavailable
from ..core.services import Conflict, NotFound
from ..core.te import POLICIES
from ..core.topology import TopologyError, str_to_dpid
from . import openapi

LOG = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20  # no request we answer needs more
MUTATING = frozenset({"POST", "PUT", "DELETE", "PATCH"})


class Refused(Exception):
    """A request that may not be served: (status, why)."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


class Access:
    """Who may change things over REST: the holders of ``token``, or with none
    configured, loopback clients."""

    def __init__(self, token: str = ""):
        self.token = token

    def check(self, req) -> None:
        if req.method not in MUTATING:
            return
        if self.token:
            given = req.headers.get("Authorization", "")
            if not given.startswith("Bearer "):
                raise Refused(401, "this request needs 'Authorization: Bearer <token>'")
            if not hmac.compare_digest(given[len("Bearer "):].strip().encode(),
                                       self.token.encode()):
                raise Refused(403, "wrong token")
            return
        try:
            loopback = ipaddress.ip_address(req.remote_addr or "").is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise Refused(403, "changes are accepted from loopback only unless rest_token "
                               "is set")


def read_token(token: str, token_file: str) -> str:
    """The configured token: ``token_file``'s first line if given, else ``token``.
    OSError or ValueError (an empty file) if the file cannot give one."""
    if not token_file:
        return token
    with open(token_file, encoding="utf-8") as handle:
        line = handle.readline().strip()
    if not line:
        raise ValueError("rest_token_file %s is empty" % token_file)
    return line


def register_rest(wsgi, view, access: Access) -> None:
    """Our routes on Ryu's WSGI application."""
    wsgi.register(RestApi, {"view": view, "access": access})


def register_fallback(wsgi) -> None:
    """The route that answers every path and method no route serves.  Routes match in
    the order registered, so this must come after every app's (Ryu's ofctl_rest may run
    beside ours): the app registers it in ``start``, which runs once all apps exist."""
    wsgi.register(RestFallback)


def _json(status: int, body) -> Response:
    return Response(status=status, content_type="application/json", charset="utf-8",
                    body=json.dumps(body, indent=1, sort_keys=True) + "\n")


def json_api(handler):
    @functools.wraps(handler)
    def wrapper(self, req, **kwargs):
        try:
            self.access.check(req)
            if req.method in MUTATING:
                self.view.check_writable()
            result = handler(self, req, **kwargs)
            status, body = result if isinstance(result, Created) else (200, result)
            return _json(status, body)
        except (TopologyError, NotFound) as exc:
            return _json(404, {"error": str(exc).strip("'\"")})
        except Refused as exc:
            return _json(exc.status, {"error": str(exc)})
        except NotLeader as exc:
            return _json(409, {"error": str(exc), "leader": exc.leader,
                               "leader_rest": exc.rest_url})
        except StoreUnavailable as exc:
            return _json(503, {"error": str(exc)})
        except Conflict as exc:
            return _json(409, {"error": str(exc)})
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        except Exception:
            LOG.exception("REST %s %s failed", req.method, req.path_qs)
            return _json(500, {"error": "internal error; see the controller log"})
    return wrapper


class Created(tuple):
    """(201, body): what a handler returns for a POST that made something."""

    def __new__(cls, body):
        return super().__new__(cls, (201, body))


def _body(req):
    if (req.content_length or 0) > MAX_BODY_BYTES:
        raise Refused(413, "body over %d bytes" % MAX_BODY_BYTES)
    raw = req.body_file.read(MAX_BODY_BYTES + 1) if req.is_body_readable else b""
    if len(raw) > MAX_BODY_BYTES:
        raise Refused(413, "body over %d bytes" % MAX_BODY_BYTES)
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise ValueError("body is not JSON: %s" % exc) from None


def _only_params(req, allowed: set) -> None:
    unknown = set(req.GET) - allowed
    if unknown:
        raise ValueError("unknown query parameter(s): %s" % ", ".join(sorted(unknown)))


class RestApi(ControllerBase):
    """Registered with ``{"view": NetworkView}``."""

    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.view = data["view"]
        self.access = data["access"]

    @route("openapi", "/v1/openapi.json", methods=["GET"])
    @json_api
    def openapi(self, req):
        """This API described (OpenAPI 3.0)."""
        _only_params(req, set())
        return openapi.document()

    @route("topology", "/v1/topology", methods=["GET"])
    @json_api
    def topology(self, req):
        _only_params(req, {"format"})
        return self.view.topology(req.GET.get("format", "default"))

    @route("switches", "/v1/switches", methods=["GET"])
    @json_api
    def switches(self, req):
        _only_params(req, set())
        return self.view.switches()

    @route("switch", "/v1/switches/{dpid}", methods=["GET"])
    @json_api
    def switch(self, req, dpid):
        _only_params(req, set())
        return self.view.switch(str_to_dpid(dpid))

    @route("forget_switch", "/v1/switches/{dpid}", methods=["DELETE"])
    @json_api
    def forget_switch(self, req, dpid):
        """A disconnected switch forgotten now, with its links and hosts (409 if it is
        connected)."""
        _only_params(req, set())
        return self.view.forget_switch(str_to_dpid(dpid))

    @route("reset_port", "/v1/switches/{dpid}/ports/{port_no}/reset", methods=["POST"])
    @json_api
    def reset_port(self, req, dpid, port_no):
        """Forget a port's hosts, links and that it carried host traffic, so a switch
        cabled where a host was is learned (404 for an unknown switch or port)."""
        _only_params(req, set())
        if not port_no.isdigit():
            raise ValueError("port_no must be a whole number, got %r" % port_no)
        return self.view.reset_port(str_to_dpid(dpid), int(port_no))

    @route("hosts", "/v1/hosts", methods=["GET"])
    @json_api
    def hosts(self, req):
        _only_params(req, set())
        return self.view.hosts()

    @route("host", "/v1/hosts/{key}", methods=["GET"])
    @json_api
    def host(self, req, key):
        _only_params(req, set())
        return self.view.host(key)

    @route("links", "/v1/links", methods=["GET"])
    @json_api
    def links(self, req):
        _only_params(req, set())
        return self.view.links()

    @route("paths", "/v1/paths", methods=["GET"])
    @json_api
    def paths(self, req):
        _only_params(req, {"src", "dst"})
        src, dst = req.GET.get("src"), req.GET.get("dst")
        if not src or not dst:
            raise ValueError("both src and dst are required (host MAC or IPv4 address)")
        return self.view.paths(src, dst)

    @route("demand", "/v1/demand", methods=["GET"])
    @json_api
    def demand(self, req):
        _only_params(req, set())
        return self.view.demand()

    @route("admission", "/v1/admission", methods=["GET"])
    @json_api
    def admission(self, req):
        _only_params(req, set())
        return self.view.admission()

    @route("policy", "/v1/policy", methods=["GET"])
    @json_api
    def policy(self, req):
        _only_params(req, set())
        return self.view.policy()

    @route("set_policy", "/v1/policy", methods=["PUT"])
    @json_api
    def set_policy(self, req):
        body = _body(req)
        if not isinstance(body, dict) or set(body) != {"policy"}:
            raise ValueError('body must be {"policy": one of %s}' % ", ".join(POLICIES))
        return self.view.set_policy(body["policy"])

    @route("services", "/v1/services", methods=["GET"])
    @json_api
    def services(self, req):
        _only_params(req, set())
        return self.view.services()

    @route("add_service", "/v1/services", methods=["POST"])
    @json_api
    def add_service(self, req):
        return Created(self.view.add_service(_body(req)))

    @route("service", "/v1/services/{name}", methods=["GET"])
    @json_api
    def service(self, req, name):
        _only_params(req, set())
        return self.view.service(name)

    @route("remove_service", "/v1/services/{name}", methods=["DELETE"])
    @json_api
    def remove_service(self, req, name):
        return self.view.remove_service(name)

    @route("add_backend", "/v1/services/{name}/backends", methods=["POST"])
    @json_api
    def add_backend(self, req, name):
        return Created(self.view.add_backend(name, _body(req)))

    @route("update_backend", "/v1/services/{name}/backends/{ip}", methods=["PUT"])
    @json_api
    def update_backend(self, req, name, ip):
        return self.view.update_backend(name, ip, _body(req))

    @route("remove_backend", "/v1/services/{name}/backends/{ip}", methods=["DELETE"])
    @json_api
    def remove_backend(self, req, name, ip):
        return self.view.remove_backend(name, ip)

    @route("scaling", "/v1/services/{name}/scaling", methods=["GET"])
    @json_api
    def scaling(self, req, name):
        return self.view.scaling(name)

    @route("set_scaling", "/v1/services/{name}/scaling", methods=["PUT"])
    @json_api
    def set_scaling(self, req, name):
        return self.view.set_scaling(name, _body(req))

    @route("stats", "/v1/stats/{dpid}", methods=["GET"])
    @json_api
    def stats(self, req, dpid):
        _only_params(req, set())
        return self.view.port_stats(str_to_dpid(dpid))

    @route("cluster", "/v1/cluster", methods=["GET"])
    @json_api
    def cluster(self, req):
        _only_params(req, set())
        return self.view.cluster()

    @route("events", "/v1/events", methods=["GET"])
    @json_api
    def events(self, req):
        """Newest last.  ``since=<seq>`` returns only later events; ``limit`` caps them."""
        _only_params(req, {"since", "limit"})
        try:
            since = int(req.GET.get("since", 0))
            limit = int(req.GET.get("limit", 1000))
        except ValueError:
            raise ValueError("since and limit must be whole numbers") from None
        return self.view.events(since, limit)


class RestFallback(ControllerBase):
    """Every path and method our routes do not serve: 405 naming the methods the path
    has, else 404, both JSON (Ryu's router alone answers an HTML 404 for both)."""

    @route("fallback", r"/{path:[\s\S]*}")  # newlines too: "." would miss "/%0A"
    def fallback(self, req, **_):
        allowed = sorted(method for method in ("GET", "POST", "PUT", "DELETE")
                         if self._served(req, method))
        if not allowed:
            return _json(404, {"error": "no such route: %s" % req.path})
        answer = _json(405, {"error": "%s is not allowed on %s (allowed: %s)" % (
            req.method, req.path, ", ".join(allowed))})
        answer.headers["Allow"] = ", ".join(allowed)
        return answer

    def _served(self, req, method: str) -> bool:
        environ = dict(req.environ, REQUEST_METHOD=method)
        match = self.parent.mapper.match(environ=environ)
        return bool(match) and match["controller"] is not RestFallback
