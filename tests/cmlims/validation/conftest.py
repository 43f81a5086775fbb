"""Runs small pytest sessions in a subprocess with the requirement plugin and a fixture register, so the
marker checks and the JUnit properties are tested as a real run produces them."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURE_REGISTER = Path(__file__).with_name("fixture_register.yaml")

# One test per situation of the fixture register: passing, failing, uncovered, high risk with and without
# a test through the API (the auth_client fixture), skipped.
SAMPLE_TESTS = '''
import pytest


@pytest.fixture
def auth_client():
    return "an API client"


@pytest.mark.req("REQ-PASS", "REQ-HIGH-OK", "REQ-HIGH-SERVICE")
def test_passes():
    assert True


@pytest.mark.req("REQ-HIGH-OK")
def test_passes_through_the_api(auth_client):
    assert auth_client


@pytest.mark.req("REQ-HIGH-SERVICE", "REQ-FAIL")
def test_passes_at_service_level():
    assert True


@pytest.mark.req("REQ-FAIL")
def test_fails():
    assert 1 == 2


@pytest.mark.req("REQ-SKIPPED")
def test_skipped():
    pytest.skip("not here")


@pytest.mark.req("REQ-PASS", via="browser")
def test_declares_how_it_reaches_the_system():
    assert True
'''


@pytest.fixture
def run_pytest(tmp_path):
    """run_pytest(source, register=FIXTURE_REGISTER) -> (CompletedProcess, junit path)."""

    def run(source: str, register: Path = FIXTURE_REGISTER):
        ini = "[pytest]\nmarkers =\n    req: requirement ids\naddopts = --strict-markers\n"
        (tmp_path / "pytest.ini").write_text(ini)
        (tmp_path / "test_sample.py").write_text(textwrap.dedent(source))
        junit = tmp_path / "junit.xml"
        env = {**os.environ, "CMLIMS_REQUIREMENTS": str(register)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
             "-p", "cmlims.validation.pytest_plugin", f"--junitxml={junit}", "test_sample.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        return result, junit

    return run


@pytest.fixture
def sample_run(run_pytest):
    result, junit = run_pytest(SAMPLE_TESTS)
    assert result.returncode == 1, result.stdout + result.stderr  # test_fails fails, nothing else
    return junit
