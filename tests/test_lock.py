"""The lock: CI installs exactly what .ci/constraints.txt pins, and the pins fit pyproject.toml."""

from __future__ import annotations

import os
import tomllib
from importlib import metadata

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

CONSTRAINTS = REPO_ROOT / ".ci" / "constraints.txt"


def pins() -> dict[str, tuple[str, Marker | None]]:
    """Each locked package's version and the marker under which the pin applies."""
    found: dict[str, tuple[str, Marker | None]] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line or line[0] in "# ":
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        found[canonicalize_name(requirement.name)] = (specifier.version, requirement.marker)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(text) for text in [*project["dependencies"], *extras["test"]]]


def test_every_declared_dependency_is_locked_within_its_range():
    locked = pins()

    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in .ci/constraints.txt: run bash .ci/lock"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} is outside {requirement.specifier}: run bash .ci/lock"
        )


@pytest.mark.skipif(os.environ.get("COMMONWATT_UNLOCKED") == "1",
                    reason="installed with the newest allowed versions (.ci/run --newest)")
def test_what_is_installed_is_what_the_lock_pins():
    differing = []
    for name, (version, _) in sorted(pins().items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment did not ask for (lock, postgres)
        if installed != version:
            differing.append(f"{name} {installed} (lock: {version})")

    assert not differing, "installed without the lock: " + ", ".join(differing)
