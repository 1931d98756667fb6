"""``ryu-manager sdn_app.controller``: the name users start the controller by.

The application lives in ``sdn_app.ryuapp.app`` (``ryu-manager sdn_app.ryuapp.app``
works too).  Ryu loads the RyuApp subclass *defined* in the module it is given, so this
module defines one rather than re-exporting it.
"""

from .ryuapp.app import ElasticController as _ElasticController


class ElasticController(_ElasticController):
    """The elastic SDN controller (see sdn_app.ryuapp.app)."""
