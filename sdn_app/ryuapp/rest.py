"""REST queries, served by Ryu's WSGI server (``--wsapi-port``, default 8080).

Handlers only parse requests and call the read-only view (core/view.py); every answer
is JSON.  Unknown switches or hosts give 404, malformed queries 400, both with
``{"error": "..."}``; an unexpected failure is logged and answered with 500, and never
reaches the controller's event loop.
"""

from __future__ import annotations

import functools
import json
import logging

from ryu.app.wsgi import ControllerBase, Response, route

from ..core.services import Conflict, NotFound
from ..core.te import POLICIES
from ..core.topology import TopologyError, str_to_dpid

LOG = logging.getLogger(__name__)


def _json(status: int, body) -> Response:
    return Response(status=status, content_type="application/json", charset="utf-8",
                    body=json.dumps(body, indent=1, sort_keys=True) + "\n")


def json_api(handler):
    @functools.wraps(handler)
    def wrapper(self, req, **kwargs):
        try:
            result = handler(self, req, **kwargs)
            status, body = result if isinstance(result, Created) else (200, result)
            return _json(status, body)
        except (TopologyError, NotFound) as exc:
            return _json(404, {"error": str(exc).strip("'\"")})
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
    try:
        return json.loads(req.body or b"null")
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
