"""The dependency lock (``requirements.lock``, written by ``make lock``): read it, and check it still
matches pyproject.toml and the installed packages (a validated system runs exactly what was tested).

    python -m cmlims.validation.lock   # exit 1 naming every dependency the lock or the venv gets wrong
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


@dataclass(frozen=True)
class LockedPackage:
    name: str
    locked: str
    installed: str | None  # None: not installed in this environment


def lock_read(*, path: Path = LOCK) -> dict[str, str]:
    """Pinned versions by canonical name."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def lock_packages(*, path: Path = LOCK) -> list[LockedPackage]:
    """Every locked package with the version installed here."""
    packages = []
    for name, version in sorted(lock_read(path=path).items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        packages.append(LockedPackage(name=name, locked=version, installed=installed))
    return packages


def lock_problems(*, lock: Path = LOCK, pyproject: Path = PYPROJECT, extras: tuple[str, ...] = ("dev",)) -> list[str]:
    """What is wrong: a declared dependency missing from the lock or pinned outside its range, or an
    installed version that differs from the pin."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    declared = list(project.get("dependencies", []))
    for extra in extras:
        declared += project.get("optional-dependencies", {}).get(extra, [])
    pins = lock_read(path=lock)
    problems = []
    for text in declared:
        requirement = Requirement(text)
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is declared in pyproject.toml but not in {lock.name}")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} in {lock.name} does not satisfy {requirement}")
    for package in lock_packages(path=lock):
        if package.installed is not None and package.installed != package.locked:
            problems.append(f"{package.name} {package.installed} is installed, {lock.name} pins {package.locked}")
    return problems


def main() -> int:
    problems = lock_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("requirements.lock does not match: run `make lock`, then `make install`", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
