"""The local ECR stand-in's pieces that need no running registry: the password moto's ECR grants,
repositories, the generated configuration, and the errors a person sees when it cannot start."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.registry import (
    RegistryError,
    ensure_repository,
    registry_config,
    registry_password_from_ecr,
    start_registry,
    write_htpasswd,
)


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.client("ecr", region_name="us-east-1")


def test_password_is_the_one_moto_grants_on_every_call(ecr: Any) -> None:
    # registry.py relies on this: the registry's htpasswd holds one fixed password. If moto starts
    # returning a random one per call, this fails first (see the module docstring).
    assert registry_password_from_ecr(ecr) == "123456789012-auth-token"
    assert registry_password_from_ecr(ecr) == registry_password_from_ecr(ecr, "123456789012")


def test_repository_is_created_once(ecr: Any) -> None:
    first = ensure_repository(ecr, "team/app")
    again = ensure_repository(ecr, "team/app")
    assert first["repositoryUri"] == again["repositoryUri"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app"
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["team/app"]


def test_config_listens_on_loopback_with_htpasswd(tmp_path: Path) -> None:
    config = json.loads(registry_config(root=tmp_path / "s", htpasswd=tmp_path / "h", host="127.0.0.1", port=5123))
    assert config["http"]["addr"] == "127.0.0.1:5123"
    assert config["auth"]["htpasswd"]["path"] == str(tmp_path / "h")
    assert config["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "s")


def test_htpasswd_holds_a_bcrypt_hash(tmp_path: Path) -> None:
    write_htpasswd(tmp_path / "htpasswd", "AWS", "secret")
    user, _, hashed = (tmp_path / "htpasswd").read_text().strip().partition(":")
    assert user == "AWS" and hashed.startswith(("$2y$", "$2b$")) and "secret" not in hashed


def test_missing_binary_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="apt-get install docker-registry"):
        start_registry(tmp_path, 5000, "pw", binary=tmp_path / "no-such-registry")


def test_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RegistryError, match=f"port {port} on 127.0.0.1 is already in use"):
            start_registry(tmp_path, port, "pw")
