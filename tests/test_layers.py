"""The dependency rule of ARCHITECTURE.md, checked on the source: the core imports
neither the other layers nor Ryu, oslo, eventlet, sockets or Mininet; the Ryu layer does
not import the lab; and the core with the unit tests' fixtures works where none of
those packages can be imported."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTSIDE_THE_CORE = ("ryu", "oslo_config", "eventlet", "mininet", "socket", "webob",
                    "sdn_app.ryuapp", "sdn_app.lab")


def imports_of(path: Path, root: Path = REPO) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names |= {"%s.%s" % (module, alias.name) for alias in node.names}
    return names


def offending(layer: str, forbidden, root: Path = REPO) -> dict:
    """{module file: [forbidden names it imports]} for one layer of the package."""
    found = {}
    for path in sorted((root / "sdn_app" / layer).glob("*.py")):
        bad = {name for name in imports_of(path, root)
               if any(name == f or name.startswith(f + ".") for f in forbidden)}
        if bad:
            found[path.name] = sorted(bad)
    return found


def test_the_core_imports_nothing_outside_it():
    assert offending("core", OUTSIDE_THE_CORE) == {}


def test_the_ryu_layer_does_not_import_the_lab():
    assert offending("ryuapp", ("sdn_app.lab", "mininet")) == {}


def test_the_rule_check_sees_a_violation(tmp_path):
    """The checks above can fail: a core module importing Ryu relatively and absolutely."""
    core = tmp_path / "sdn_app" / "core"
    core.mkdir(parents=True)
    (core / "bad.py").write_text("from ..ryuapp import codec\nimport ryu.lib.hub\n")
    assert offending("core", OUTSIDE_THE_CORE, root=tmp_path) == {
        "bad.py": ["ryu.lib.hub", "sdn_app.ryuapp", "sdn_app.ryuapp.codec"]}


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ryu", "oslo_config", "eventlet", "mininet"}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
sys.path[:0] = [%r, %r]
import pkgutil, importlib, sdn_app.core
for info in pkgutil.iter_modules(sdn_app.core.__path__):
    importlib.import_module("sdn_app.core." + info.name)
from shipped_topologies import model_of
from sdn_app.core.plan import build_plan
topo, macs = model_of("fattree,4")
print(len(topo.graph), len(macs), len(build_plan(topo)))
"""


def test_the_core_and_its_fixtures_need_no_ryu_and_no_mininet():
    out = subprocess.run([sys.executable, "-c", BLOCKER % (str(REPO), str(REPO / "tests"))],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["20", "16", "20"]


@pytest.mark.parametrize("module", ["sdn_app.controller", "sdn_app.ryuapp.app"])
def test_both_module_paths_give_ryu_manager_an_app(module):
    """ryu-manager loads the RyuApp subclass *defined* in the module it is named."""
    import importlib

    from ryu.base.app_manager import RyuApp
    mod = importlib.import_module(module)
    apps = [cls for _, cls in inspect.getmembers(mod, inspect.isclass)
            if issubclass(cls, RyuApp) and cls.__module__ == mod.__name__]
    assert [cls.__name__ for cls in apps] == ["ElasticController"]
