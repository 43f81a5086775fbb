"""No signature without re-authentication (21 CFR 11.200(a), 11.300): every path that writes a signature
checks both components first.

Two guards. At run time ``signature_record`` writes only against the unused grant that
``signing_credentials_verify`` returned for the same signer and meaning. In the code, a walk over every
module (``ast``, nothing imported) finds each function that writes a signature (calls ``signature_record`` or
another writer) and requires it to verify the credentials itself (directly or through a function of its own
module that does) or to be private, so only its own module's verifying services can reach it.
"""

import ast
from pathlib import Path

import pytest

from cmlims import roles
from cmlims.esign.models import Meaning, Signature
from cmlims.esign.services import SigningGrantInvalid, signature_record, signing_credentials_verify
from tests.support.builders import PASSWORD

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("cmlims", "batches", "qc", "config")
PRIMITIVE = "signature_record"  # the grant-checked writer itself
VERIFY = "signing_credentials_verify"


def called_names(node: ast.AST) -> set[str]:
    """Plain names and attribute tails called anywhere inside ``node`` (``f(...)``, ``mod.f(...)``)."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if isinstance(sub.func, ast.Name):
                out.add(sub.func.id)
            elif isinstance(sub.func, ast.Attribute):
                out.add(sub.func.attr)
    return out


def unguarded_writers(source: str, filename: str) -> list[str]:
    """Each public function in ``source`` that writes a signature without verifying the signer first, and each
    ``signature_record`` call without ``grant=``."""
    tree = ast.parse(source, filename=filename)
    functions = {node.name: node for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    calls = {name: called_names(node) for name, node in functions.items()}

    def closure(seed: set[str]) -> set[str]:
        # Functions of this module that call (transitively) any of ``seed``.
        found: set[str] = set()
        while True:
            more = {name for name, names in calls.items() if names & (seed | found)} - found
            if not more:
                return found
            found |= more

    writers = closure({PRIMITIVE}) - {PRIMITIVE}
    verifiers = closure({VERIFY}) - {VERIFY}
    problems = [f"{filename}:{functions[name].lineno}: {name} writes a signature without verifying the signer"
                for name in sorted(writers - verifiers) if not name.startswith("_")]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == PRIMITIVE
                and not any(k.arg == "grant" for k in node.keywords)):
            problems.append(f"{filename}:{node.lineno}: {PRIMITIVE} called without grant=")
    return problems


def project_files() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


@pytest.mark.req("P11-11.200a", "P11-11.300", "README-REC-SIGN-PATHS")
def test_every_signature_writer_verifies_the_signer_or_is_private():
    problems = []
    writers = 0
    for path in project_files():
        source = path.read_text()
        if PRIMITIVE in source:
            writers += 1
            problems += unguarded_writers(source, str(path.relative_to(ROOT)))
    assert writers >= 5  # the walk sees esign, results, specs, sign-off and the shipping services
    assert problems == []


@pytest.mark.req("README-REC-SIGN-PATHS")
def test_only_the_esign_service_builds_a_signature_row():
    builders = []
    for path in project_files():
        if path.relative_to(ROOT).as_posix() == "cmlims/esign/services.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Signature":
                builders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert builders == []


@pytest.mark.parametrize(("source", "expected"), [
    # a public function that records a signature with no credential check
    ("def approve(x):\n    signature_record(grant=g, subject=x)\n",
     ["m.py:1: approve writes a signature without verifying the signer"]),
    # public through a private helper that writes
    ("def _record(x, grant):\n    signature_record(grant=grant, subject=x)\n"
     "def approve(x):\n    _record(x, None)\n",
     ["m.py:3: approve writes a signature without verifying the signer"]),
    # the call without a grant
    ("def approve(x):\n    g = signing_credentials_verify()\n    esign.signature_record(subject=x)\n",
     ["m.py:3: signature_record called without grant="]),
])
def test_the_walk_names_file_line_and_function(source, expected):
    assert unguarded_writers(source, "m.py") == expected


@pytest.mark.parametrize("source", [
    # verify, then a private record half (results.py's shape)
    "def approve(x):\n    g = signing_credentials_verify()\n    _record(grant=g, x=x)\n"
    "def _record(*, grant, x):\n    signature_record(grant=grant, subject=x)\n",
    # the check in a helper of the same module (temperature.py's shape)
    "def _signer():\n    return signing_credentials_verify()\n"
    "def upload(x):\n    g = _signer()\n    signature_record(grant=g, subject=x)\n",
])
def test_the_walk_lets_verified_writers_through(source):
    assert unguarded_writers(source, "m.py") == []


@pytest.fixture
def officer(make_user):
    return make_user("qc1", roles.QC_OFFICER)


def record(grant, signer, meaning=Meaning.RELEASED):
    return signature_record(grant=grant, subject=signer, signer=signer, meaning=meaning, reason="",
                            content={"x": 1}, field_list_version="test/1")


@pytest.mark.django_db
@pytest.mark.req("P11-11.200a", "README-REC-SIGN-PATHS")
def test_a_signature_needs_a_fresh_grant_for_its_signer_and_meaning(officer, make_user):
    other = make_user("qc2", roles.QC_OFFICER)

    def verify(user, meaning=Meaning.RELEASED):
        return signing_credentials_verify(signer=user, username=user.username, password=PASSWORD, meaning=meaning)

    with pytest.raises(SigningGrantInvalid, match="grant returned by signing_credentials_verify"):
        record(object(), officer)
    with pytest.raises(SigningGrantInvalid, match="not user"):
        record(verify(other), officer)
    with pytest.raises(SigningGrantInvalid, match="not user"):
        record(verify(officer, Meaning.RESULT_APPROVED), officer)
    grant = verify(officer)
    signature = record(grant, officer)
    assert signature.signer == officer
    with pytest.raises(SigningGrantInvalid, match="already used"):
        record(grant, officer)
    assert Signature.objects.count() == 1
