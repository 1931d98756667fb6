"""The live topology page, served beside the REST API on Ryu's WSGI server: ``GET /ui/``
is one self-contained HTML file (static/topology.html: SVG and JavaScript, no library,
nothing fetched from elsewhere) that polls the REST API every second; ``GET /`` sends
a browser there.  The page reads what any REST client reads, nothing more."""

from __future__ import annotations

from pathlib import Path

from ryu.app.wsgi import ControllerBase, Response, route

PAGE = Path(__file__).with_name("static") / "topology.html"
UI_PATH = "/ui/"


class TopologyPage(ControllerBase):
    @route("ui", UI_PATH, methods=["GET"])
    def page(self, req, **_):
        return Response(content_type="text/html", charset="utf-8", body=PAGE.read_bytes(),
                        headers={"Cache-Control": "no-cache"})

    @route("ui_redirect", "/ui", methods=["GET"])
    def to_page(self, req, **_):
        return Response(status=302, location=UI_PATH)

    @route("root", "/", methods=["GET"])
    def root(self, req, **_):
        return Response(status=302, location=UI_PATH)


def register_page(wsgi) -> None:
    wsgi.register(TopologyPage)
