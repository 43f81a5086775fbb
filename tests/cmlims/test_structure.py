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


# --- one lock module per app, one status writer per aggregate, tests that build through the builders -------

LOCK_MODULES = {"batches.locks", "batches.shipping.locks", "qc.locks", "cmlims.locks"}


def _functions_with(tree: ast.AST, found) -> list[tuple[str, int]]:
    """(enclosing function name, line) of every node ``found(node)`` accepts."""
    out = []
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        out.extend((func.name, node.lineno) for node in ast.walk(func) if found(node))
    return out


def test_every_row_lock_lives_in_a_lock_module():
    offenders = []
    for module, path in project_modules().items():
        if module in LOCK_MODULES or ".migrations." in module:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr == "select_for_update"]
    assert offenders == [], "select_for_update outside batches/locks.py, batches/shipping/locks.py, qc/locks.py, " \
                            f"cmlims/locks.py: {offenders}"


# Where a lot's, vial's or shipment's status (or the lot's hold flag) may be written: the pipeline entry points,
# and the two services that create rows in their first state. Culture status (active → conditioning →
# closed) is written by the culture services; it is not one of the three pipelines yet.
STATUS_WRITERS = {
    ("batches.services.lots", "_apply"),  # lot_transition / lot_set_status_signed apply a rule here
    ("batches.services.lots", "lot_set_hold"),
    ("batches.services.lots", "lot_pool"),  # creates the lot, pooled
    ("batches.services.vials", "vials_set_status"),
    ("batches.services.packaging", "packaging_record"),  # creates the vials, available
    ("batches.shipping.services.status", "shipment_set_status"),
    ("batches.services.cultures", "culture_start_conditioning"),
    ("batches.services.cultures", "culture_close"),
}


def _writes_status(node: ast.AST) -> bool:
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Attribute) and t.attr in ("status", "on_hold") for t in targets)
    if isinstance(node, ast.Call) and node.keywords:
        writes = {kw.arg for kw in node.keywords} & {"status", "on_hold"}
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        # Writes: the audit write API, a model constructor (Vial(...)), a queryset update.
        # Response(status=...) is HTTP; Q(on_hold=True) is a lookup (a filtered count), not a row.
        constructor = name[:1].isupper() and not name.endswith("Response") and name != "Q"
        return bool(writes) and (name.startswith("audited_") or constructor or name == "update")
    return False


def test_only_the_pipeline_entry_points_write_a_status():
    offenders = []
    for module, path in project_modules().items():
        if not module.startswith("batches.") or ".migrations." in module or module.endswith(".demo"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        offenders += [f"{path.relative_to(ROOT)}:{line} in {name}()"
                      for name, line in _functions_with(tree, _writes_status) if (module, name) not in STATUS_WRITERS]
    assert offenders == [], f"a status written outside its pipeline's entry point: {offenders}"


def test_tests_import_builders_not_conftests_or_other_test_modules():
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [node.module or ""]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                          if n.split(".")[-1] == "conftest" or n.split(".")[-1].startswith("test_")]
    assert offenders == [], f"import shared test code from tests/support/, not from a conftest or test: {offenders}"
