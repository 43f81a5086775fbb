"""Facts about the checkout a run comes from."""

from __future__ import annotations

import subprocess  # noqa: S404 - git, with fixed arguments
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # the code under test, wherever pytest runs from


def git_commit(*, cwd: Path = CHECKOUT) -> str:
    """HEAD of the checkout, with "-dirty" when tracked files differ from it (such a run proves no commit)."""
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True  # noqa: S607
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
