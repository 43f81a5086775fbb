"""The shape of the code: public faces between modules, and a core that knows nothing of ``config``.

Walks the imports of every module under the application packages with ``ast`` (no import runs). A
module's ``_name`` is its own business: another module that imports it, or reaches it as
``module._name``, depends on something its owner may change without notice. And ``cmlims`` is the
core every app shares: whatever composes the apps (``config``) hands it what it needs, so the core
never imports ``config``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cmlims", "batches", "qc", "config")
CORE = "cmlims"
TOP = "config"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything that is not a plain chain of names."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    names.append(node.id)
    return names[::-1]


def problems(module: str, source: str, *, filename: str, is_package: bool, modules: set[str]) -> list[str]:
    """Every cross-module private import or access, and every import of ``config`` from the core."""
    tree = ast.parse(source, filename=filename)
    found = []
    bound: dict[str, str] = {}  # local name -> the project module it is bound to
    in_core = module == CORE or module.startswith(CORE + ".")

    def refuse_config(target: str, line: int) -> None:
        if in_core and (target == TOP or target.startswith(TOP + ".")):
            found.append(f"{filename}:{line}: the core imports {target}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                refuse_config(alias.name, node.lineno)
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    bound[head] = head
        elif isinstance(node, ast.ImportFrom):
            source_module = resolve(module, is_package, node)
            refuse_config(source_module, node.lineno)
            for alias in node.names:
                full = f"{source_module}.{alias.name}"
                if full in modules:  # ``from pkg import module`` binds a module
                    bound[alias.asname or alias.name] = full
                if is_private(alias.name) and source_module != module:
                    found.append(f"{filename}:{node.lineno}: imports {alias.name} from {source_module}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        chain = dotted(node.value)
        if not chain or chain[0] not in bound:
            continue
        target = ".".join([bound[chain[0]], *chain[1:]])
        if target in modules and target != module:
            found.append(f"{filename}:{node.lineno}: uses {target}.{node.attr}")
    return found


def test_no_private_names_across_modules_and_no_config_in_the_core():
    modules = project_modules()
    found = [
        problem
        for module, path in modules.items()
        for problem in problems(
            module, path.read_text(), filename=str(path.relative_to(ROOT)), is_package=path.name == "__init__.py",
            modules=set(modules),
        )
    ]
    assert found == []


def test_the_walk_sees_every_package():
    modules = project_modules()
    assert {"cmlims.audit", "cmlims.audit.chain", "batches.services.lots", "qc.admin", "config.demo"} <= set(modules)


# The checker itself: each rule catches what it is meant to, and lets the rest through.

CHECK = {"filename": "x.py", "modules": {"cmlims", "cmlims.audit", "cmlims.audit.chain", "cmlims.roles",
                                          "config", "config.demo", "batches", "batches.services",
                                          "batches.services.lots"}}


@pytest.mark.parametrize(
    ("module", "is_package", "source", "expected"),
    [
        ("batches.services.lots", False, "from cmlims.audit import _hmac_key", "imports _hmac_key from cmlims.audit"),
        ("batches.services.drying", False, "from .lots import _locked", "imports _locked from batches.services.lots"),
        ("batches.services", True, "from .lots import _locked", "imports _locked from batches.services.lots"),
        ("qc.admin", False, "from cmlims import roles\nroles._cache", "uses cmlims.roles._cache"),
        ("qc.admin", False, "import cmlims.audit.chain as c\nc._lock_chain()", "uses cmlims.audit.chain._lock_chain"),
        ("qc.admin", False, "import cmlims.roles\ncmlims.roles._cache", "uses cmlims.roles._cache"),
        ("cmlims.health", False, "from config.celery import app", "the core imports config.celery"),
        ("cmlims.backups", False, "def f():\n    import config.settings.base", "the core imports config.settings.base"),
        ("cmlims.demo", False, "from config import demo", "the core imports config"),
    ],
)
def test_the_checker_names_file_line_and_name(module, is_package, source, expected):
    (problem,) = problems(module, source, is_package=is_package, **CHECK)
    assert problem.startswith("x.py:") and problem.endswith(expected)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("cmlims.audit.chain", "_x = 1\nfrom cmlims.audit.chain import _x"),  # its own name
        ("cmlims.audit", "from cmlims.audit.chain import __doc__"),  # dunders are not private
        ("qc.admin", "from cmlims.audit import chain_head\nobj._meta\nself._cache"),  # objects, not modules
        ("batches.demo", "from config.demo import seed_all"),  # only the core must not know config
        ("tests.x", "from cmlims.audit import chain_head"),
    ],
)
def test_the_checker_lets_public_and_own_names_through(module, source):
    assert problems(module, source, is_package=False, **CHECK) == []
