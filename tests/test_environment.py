"""Any truthy CI makes a missing service fail the run, not skip it."""

from __future__ import annotations

import pytest

from tests.environment import in_ci, skip_or_fail


@pytest.mark.parametrize("value", ["true", "1", "yes", "True", "on"])
def test_any_truthy_ci_counts(monkeypatch, value):
    monkeypatch.setenv("CI", value)

    assert in_ci()
    with pytest.raises(pytest.fail.Exception):
        skip_or_fail("a service is missing")


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_a_developer_machine_skips(monkeypatch, value):
    monkeypatch.setenv("CI", value)

    assert not in_ci()
    with pytest.raises(pytest.skip.Exception):
        skip_or_fail("a service is missing")
