"""A run without ../shared's reference files stops with a usage error instead of passing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_missing_reference_files_stop_the_run(tmp_path: Path) -> None:
    # A copy of the repository whose parent holds no shared/ folder.
    copy = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(copy)], check=True)
    (copy / "tests" / "conftest.py").write_text(
        (REPO_ROOT / "tests" / "conftest.py").read_text())

    result = subprocess.run([sys.executable, "-m", "pytest", "tests/test_environment.py", "-q"],
                            cwd=copy, capture_output=True, text=True, check=False)

    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert "reference files of ../shared are missing" in result.stderr
