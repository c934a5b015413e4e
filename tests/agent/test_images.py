"""The agent's image pulls against the real Docker engine: imagePullPolicy as kubelet applies it, and ECR
images pulled from the local registry that stands in for ECR, with moto's ECR credentials."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from skiff_agent.images import (
    ERR_IMAGE_NEVER_PULL,
    ERR_IMAGE_PULL,
    INVALID_IMAGE_NAME,
    ImageConfig,
    ImagePuller,
    ImagePullError,
    default_pull_policy,
    parse_mirrors,
    parse_reference,
)
from tests.agent.conftest import ECR_HOST, REGION, LocalRegistry, PushedImage

OTHER_ACCOUNT_HOST = f"210987654321.dkr.ecr.{REGION}.amazonaws.com"
# moto's ECR token says it expired on 2015-01-01; a clock before that keeps it valid.
BEFORE_MOTO_EXPIRY = datetime(2014, 12, 31, 12, 0, tzinfo=UTC).timestamp()


class CountingECR:
    """moto's ECR client, counting GetAuthorizationToken calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def get_authorization_token(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.client.get_authorization_token(**kwargs)


def make_puller(docker_client: Any, registry: LocalRegistry, ecr: Any, *, clock: Any = time.time,
                mirrors: dict[str, str] | None = None) -> ImagePuller:
    config = ImageConfig(region=REGION, registry_mirrors=mirrors or {ECR_HOST: registry.host})
    return ImagePuller(docker_client, config, ecr_client_factory=lambda region: ecr, clock=clock)


def test_never_pull_of_an_absent_image_is_errimageneverpull(docker_client: Any, registry: LocalRegistry,
                                                            pushed_image: PushedImage, ecr: Any) -> None:
    puller = make_puller(docker_client, registry, ecr)
    with pytest.raises(ImagePullError) as e:
        puller.ensure(pushed_image.ecr_ref, "Never")
    assert e.value.reason == ERR_IMAGE_NEVER_PULL
    assert e.value.message == f'Container image "{pushed_image.ecr_ref}" is not present with pull policy of Never'


def test_present_image_is_used_without_a_pull(docker_client: Any, busybox_image: str, registry: LocalRegistry,
                                              ecr: Any) -> None:
    puller = make_puller(docker_client, registry, ecr)
    image_id = docker_client.api.inspect_image(busybox_image)["Id"]
    for policy in ("IfNotPresent", "Never"):
        result = puller.ensure(busybox_image, policy, on_pull=lambda: pytest.fail("no pull is announced"))
        assert (result.pulled, result.image_id, result.image_ref_local) == (False, image_id, busybox_image)
        assert result.message == f'Container image "{busybox_image}" already present on machine'


def test_ecr_image_is_pulled_through_the_mirror_and_runs_under_its_pod_spec_name(
        docker_client: Any, registry: LocalRegistry, pushed_image: PushedImage, ecr: Any) -> None:
    puller = make_puller(docker_client, registry, ecr)
    result = puller.ensure(pushed_image.ecr_ref, "IfNotPresent")
    assert result.pulled
    assert result.image_ref_local == pushed_image.ecr_ref
    assert result.image_id == docker_client.api.inspect_image(pushed_image.ecr_ref)["Id"]
    assert result.status_image_id == f"docker-pullable://{ECR_HOST}/{pushed_image.repository}@{pushed_image.digest}"
    out = docker_client.containers.run(result.image_ref_local, ["echo", "hello from ecr"], remove=True)
    assert out == b"hello from ecr\n"
    assert puller.ensure(pushed_image.ecr_ref, "IfNotPresent").pulled is False  # now present
    announced: list[str] = []
    assert puller.ensure(pushed_image.ecr_ref, "Always", on_pull=lambda: announced.append("pulling")).pulled is True
    assert announced == ["pulling"]  # Always pulls even so, and says so first


def test_wrong_password_is_errimagepull_with_dockers_message(docker_client: Any, registry: LocalRegistry,
                                                             pushed_image: PushedImage, ecr: Any) -> None:
    # Another account's token carries another password ("210987654321-auth-token"), which the registry refuses.
    puller = make_puller(docker_client, registry, ecr,
                         mirrors={ECR_HOST: registry.host, OTHER_ACCOUNT_HOST: registry.host})
    image = f"{OTHER_ACCOUNT_HOST}/{pushed_image.repository}:{pushed_image.ecr_ref.rsplit(':', 1)[1]}"
    with pytest.raises(ImagePullError) as e:
        puller.ensure(image, "IfNotPresent")
    assert e.value.reason == ERR_IMAGE_PULL
    assert e.value.message.startswith(f'Failed to pull image "{image}": ')
    assert "unauthorized: authentication required" in e.value.message


def test_registry_other_than_ecr_is_contacted_anonymously(docker_client: Any, registry: LocalRegistry,
                                                          pushed_image: PushedImage, ecr: Any) -> None:
    counting = CountingECR(ecr)
    puller = make_puller(docker_client, registry, counting, mirrors={"registry.example.com": registry.host})
    with pytest.raises(ImagePullError) as e:
        puller.ensure(f"registry.example.com/{pushed_image.repository}:x", "Always")
    assert e.value.reason == ERR_IMAGE_PULL
    assert "no basic auth credentials" in e.value.message or "unauthorized" in e.value.message
    assert counting.calls == 0


def test_nonexistent_image_is_errimagepull_with_dockers_message(docker_client: Any, registry: LocalRegistry,
                                                                ecr: Any) -> None:
    puller = make_puller(docker_client, registry, ecr)
    image = f"{ECR_HOST}/skiff-agent-test/no-such-image:1"
    with pytest.raises(ImagePullError) as e:
        puller.ensure(image, "IfNotPresent")
    assert e.value.reason == ERR_IMAGE_PULL
    assert e.value.message.startswith(f'Failed to pull image "{image}": ')
    assert "not found" in e.value.message or "unknown" in e.value.message, e.value.message


@pytest.mark.parametrize("image", ["Bad/Image Name", "UPPER:1", "a" * 64, "x:1@sha256:abc"])
def test_invalid_name_is_invalidimagename(docker_client: Any, registry: LocalRegistry, ecr: Any,
                                          image: str) -> None:
    puller = make_puller(docker_client, registry, ecr)
    with pytest.raises(ImagePullError) as e:
        puller.ensure(image, "Always")
    assert e.value.reason == INVALID_IMAGE_NAME
    assert e.value.message.startswith(f"Failed to apply default image tag {image!r}: couldn't parse image name")


def test_ecr_credentials_are_cached_until_five_minutes_before_expiry(
        docker_client: Any, registry: LocalRegistry, pushed_image: PushedImage, ecr: Any) -> None:
    now = [BEFORE_MOTO_EXPIRY]
    counting = CountingECR(ecr)
    puller = make_puller(docker_client, registry, counting, clock=lambda: now[0])
    assert puller.ensure(pushed_image.ecr_ref, "Always").pulled
    assert puller.ensure(pushed_image.ecr_ref, "Always").pulled
    assert counting.calls == 1
    now[0] = datetime(2014, 12, 31, 23, 56, tzinfo=UTC).timestamp()  # within 5 min of expiry: fetch anew
    assert puller.ensure(pushed_image.ecr_ref, "Always").pulled
    assert counting.calls == 2


def test_concurrent_ensures_of_one_image_pull_once(docker_client: Any, registry: LocalRegistry,
                                                   pushed_image: PushedImage, ecr: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_pull = docker_client.api.pull
    pulls: list[str] = []

    def slow_pull(repository: str, **kwargs: Any) -> Any:
        pulls.append(repository)
        time.sleep(0.5)  # long enough for every caller to arrive while the pull is in progress
        return real_pull(repository, **kwargs)

    monkeypatch.setattr(docker_client.api, "pull", slow_pull)
    puller = make_puller(docker_client, registry, ecr)
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(puller.ensure(pushed_image.ecr_ref, "Always"))
        except Exception as e:  # collected, so the assertion below shows it
            results.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(pulls) == 1
    assert len(results) == 6 and all(not isinstance(r, Exception) for r in results), results
    assert {r.image_id for r in results} == {docker_client.api.inspect_image(pushed_image.ecr_ref)["Id"]}


def test_concurrent_failures_are_shared(docker_client: Any, registry: LocalRegistry, ecr: Any) -> None:
    puller = make_puller(docker_client, registry, ecr)
    image = f"{ECR_HOST}/skiff-agent-test/no-such-image:concurrent"
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            puller.ensure(image, "IfNotPresent")
        except ImagePullError as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 4 and all(isinstance(e, ImagePullError) and e.reason == ERR_IMAGE_PULL for e in errors)


def test_mirrors_from_the_environment() -> None:
    config = ImageConfig.from_env({"AWS_REGION": "eu-west-1",
                                   "SKIFF_REGISTRY_MIRRORS": f" {ECR_HOST}=127.0.0.1:5000 , other.io=127.0.0.1:5001"})
    assert config == ImageConfig(region="eu-west-1",
                                 registry_mirrors={ECR_HOST: "127.0.0.1:5000", "other.io": "127.0.0.1:5001"})
    assert parse_mirrors("") == {}
    with pytest.raises(ValueError, match="registry-host=mirror-host:port"):
        parse_mirrors("127.0.0.1:5000")


def test_references_normalise_as_docker_does() -> None:
    assert str(parse_reference("busybox")) == "docker.io/library/busybox:latest"
    assert str(parse_reference(f"{ECR_HOST}/team/app:v1")) == f"{ECR_HOST}/team/app:v1"
    assert parse_reference(f"{ECR_HOST}/team/app:v1").domain == ECR_HOST
    assert str(parse_reference("localhost:5000/a@sha256:" + "f" * 64)) == "localhost:5000/a@sha256:" + "f" * 64
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("busybox:1.36") == "IfNotPresent"


def test_local_registry_accepts_only_the_password_from_moto_ecr(registry: LocalRegistry, ecr: Any) -> None:
    import base64
    import urllib.error
    import urllib.request

    from skiff.registry import registry_password_from_ecr

    def status(password: str | None) -> int:
        request = urllib.request.Request(f"http://{registry.host}/v2/")
        if password is not None:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 - loopback
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    assert status(registry_password_from_ecr(ecr)) == 200
    assert (status(None), status("wrong")) == (401, 401)


def test_ecr_image_pinned_by_digest_runs_under_the_mirrors_digest_name(
        docker_client: Any, registry: LocalRegistry, pushed_image: PushedImage, ecr: Any,
        local_refs: list[str]) -> None:
    # Docker cannot tag a digest reference, so the name to create containers with is the one pulled.
    image = f"{ECR_HOST}/{pushed_image.repository}@{pushed_image.digest}"
    local_refs.append(f"{registry.host}/{pushed_image.repository}@{pushed_image.digest}")
    puller = make_puller(docker_client, registry, ecr)
    result = puller.ensure(image, "IfNotPresent")
    assert result.pulled and result.image_ref_local == local_refs[-1]
    assert result.status_image_id == f"docker-pullable://{image}"
    assert docker_client.containers.run(result.image_ref_local, ["echo", "pinned"], remove=True) == b"pinned\n"
    assert puller.ensure(image, "Never").pulled is False


def test_test_image_needs_busybox_static(docker_client: Any, tmp_path: Any) -> None:
    from skiff.testimage import TestImageError, ensure_test_image

    with pytest.raises(TestImageError, match="apt-get install busybox-static"):
        ensure_test_image(docker_client, "skiff-agent-test/never-built:1", busybox=tmp_path / "busybox")
