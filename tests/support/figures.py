"""A figure a test measured, for the validation pack's reliability table (cmlims/validation/reliability.py).

Written as a JUnit test-case property ``figure.<name>`` (the plugin writes ``req`` the same way); pytest's own
``record_property`` fixture does the same but warns under the default ``xunit2`` report family."""

from __future__ import annotations

import pytest

from cmlims.validation.matrix import FIGURE_PREFIX


def figure_record(request: pytest.FixtureRequest, name: str, value: int | str) -> None:
    request.node.user_properties.append((FIGURE_PREFIX + name, str(value)))
