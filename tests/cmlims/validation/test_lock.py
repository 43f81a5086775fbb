"""The lock check: requirements.lock against pyproject.toml and the installed packages."""

import django

from cmlims.validation.lock import LOCK, lock_problems, lock_read

PYPROJECT = '''
[project]
name = "x"
dependencies = ["Django~=5.2.19", "celery[redis]~=5.7.0"]

[project.optional-dependencies]
dev = ["pytest>=8.3,<10"]
'''


def _lock(tmp_path, text):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "requirements.lock").write_text(text)
    return lock_problems(lock=tmp_path / "requirements.lock", pyproject=tmp_path / "pyproject.toml")


def test_lock_matching_pyproject_has_no_problem(tmp_path):
    pins = lock_read(path=LOCK)
    text = "".join(f"{name}=={pins[name]} \\\n    --hash=sha256:00\n" for name in ("django", "celery", "pytest"))
    assert _lock(tmp_path, text) == []


def test_lock_missing_a_declared_dependency_or_pinned_outside_its_range_is_named(tmp_path):
    pins = lock_read(path=LOCK)
    problems = _lock(tmp_path, f"Django==4.2.1 \\\n    --hash=sha256:00\npytest=={pins['pytest']}\n")
    assert problems == ["Django==4.2.1 in requirements.lock does not satisfy Django~=5.2.19",
                        "celery is declared in pyproject.toml but not in requirements.lock",
                        f"django {django.get_version()} is installed, requirements.lock pins 4.2.1"]


def test_the_project_lock_matches_pyproject_and_this_environment():
    assert lock_problems() == []
