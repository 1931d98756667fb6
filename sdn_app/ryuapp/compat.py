"""Compatibility shim that lets Ryu 4.34 start on Python 3.11.

Every eventlet release that runs on 3.11 dropped ``eventlet.wsgi.ALREADY_HANDLED``,
which ``ryu/app/wsgi.py`` imports at start-up, so ``ryu-manager`` dies before it loads
any application.  Ryu only returns that object to tell eventlet "the response was
already written"; modern eventlet accepts any iterable there, so an empty list is a
faithful stand-in.

The venv imports this module (``sdn_app.ryuapp.compat``) from a ``.pth`` file
(scripts/setup.sh) so that plain ``ryu-manager`` works.  At that point not all of
``sys.path`` is set up yet, so nothing is imported here: a meta-path hook adds the name
right after ``eventlet.wsgi`` loads.
"""

import importlib.abc
import sys

_MODULE = "eventlet.wsgi"


def _patch(module):
    if not hasattr(module, "ALREADY_HANDLED"):
        module.ALREADY_HANDLED = []


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds eventlet.wsgi through the other finders, then patches it once executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                exec_module = spec.loader.exec_module

                def exec_and_patch(module, _exec=exec_module):
                    _exec(module)
                    _patch(module)

                spec.loader.exec_module = exec_and_patch
                return spec
        return None


def install():
    if _MODULE in sys.modules:
        _patch(sys.modules[_MODULE])
    elif not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())


install()
