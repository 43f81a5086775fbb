"""The requirements register (``requirements.yaml``): loaded and checked in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_REGISTER = Path(__file__).with_name("requirements.yaml")
RISKS = ("high", "medium", "low")
FIELDS = ("id", "statement", "source", "risk", "gamp_category", "mandatory")


class RegisterError(ValueError):
    """The register file is malformed (names the entry and the problem)."""


@dataclass(frozen=True)
class Requirement:
    id: str
    statement: str
    source: str
    risk: str
    gamp_category: int
    mandatory: bool


def register_load(*, path: Path = DEFAULT_REGISTER) -> dict[str, Requirement]:
    """Requirements by id, in file order; a missing field, a bad risk or a duplicate id is refused."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    entries = data.get("requirements")
    if not isinstance(entries, list):
        raise RegisterError(f"{path}: expected a top-level 'requirements' list")
    register: dict[str, Requirement] = {}
    for index, entry in enumerate(entries, start=1):
        label = entry.get("id", "?") if isinstance(entry, dict) else repr(entry)
        where = f"{path}: entry {index} ({label})"
        if not isinstance(entry, dict):
            raise RegisterError(f"{where}: not a mapping")
        missing = [name for name in FIELDS if name not in entry]
        if missing:
            raise RegisterError(f"{where}: missing {', '.join(missing)}")
        if entry["risk"] not in RISKS:
            raise RegisterError(f"{where}: risk must be one of {', '.join(RISKS)}, not {entry['risk']!r}")
        if not isinstance(entry["mandatory"], bool):
            raise RegisterError(f"{where}: mandatory must be true or false")
        requirement = Requirement(**{name: entry[name] for name in FIELDS})
        if requirement.id in register:
            raise RegisterError(f"{where}: duplicate id {requirement.id}")
        register[requirement.id] = requirement
    return register
