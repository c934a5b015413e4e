"""Fixtures for the Pulumi program's tests: infra/ on sys.path, and the built artefacts (built once).

infra/ is not a package on the default path (Pulumi runs it as a directory); its helpers live in the
package `skiff_deploy`, so adding infra/ to sys.path brings in that one name and nothing generic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("skiff-infra-build")


@pytest.fixture(scope="session")
def lambda_bundle(build_dir: Path) -> Path:
    from skiff_deploy import bundle

    return bundle.build_lambda_bundle(build_dir)


@pytest.fixture(scope="session")
def agent_wheel(build_dir: Path) -> Path:
    from skiff_deploy import bundle

    return bundle.build_agent_wheel(build_dir)
