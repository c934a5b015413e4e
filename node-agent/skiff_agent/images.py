"""Image pulling for the agent: kubelet's imagePullPolicy, ECR credentials, and registry mirrors.

Why this exists: before a container can start, its image must be on the node's Docker engine. Kubelet
decides whether to pull from the pod's imagePullPolicy (Always / IfNotPresent / Never), reports a
failure as the container's waiting reason (ErrImagePull, ErrImageNeverPull, InvalidImageName), and
logs in to ECR with a token from `ecr:GetAuthorizationToken` (base64 `AWS:<password>`, valid for
12 hours), which its credential provider caches until shortly before it expires. This module does the
same for Docker.

Locally there is no ECR registry: moto keeps ECR's records only. A registry on loopback stands in, and
`registry_mirrors` maps the ECR host written in pod specs (`<account>.dkr.ecr.<region>.amazonaws.com`)
to it. A mirrored image is pulled from the mirror (same repository path, same tag or digest) with the
same ECR credentials, then tagged locally with the original reference, so containers are created with
the name from the pod spec and the pod's status shows it, as on AWS.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("skiff.agent.images")

PULL_ALWAYS = "Always"
PULL_IF_NOT_PRESENT = "IfNotPresent"
PULL_NEVER = "Never"

# Kubelet's waiting reasons (pkg/kubelet/images/types.go).
ERR_IMAGE_PULL = "ErrImagePull"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
ERR_IMAGE_INSPECT = "ImageInspectError"
INVALID_IMAGE_NAME = "InvalidImageName"

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
ECR_USER = "AWS"
# Refresh an ECR token this long before ECR says it expires (a pull in progress must not outlive it).
ECR_REFRESH_MARGIN_SECONDS = 5 * 60
MIRRORS_ENV = "SKIFF_REGISTRY_MIRRORS"
DOCKER_HUB = "docker.io"

# docker/distribution's reference grammar (reference/regexp.go, v2.8), which kubelet parses with.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]*)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_NAME_MAX = 255


class ImagePullError(Exception):
    """An image could not be made present; `reason` is kubelet's waiting reason, `message` its text."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class InvalidReference(ValueError):
    """A string that is not a Docker image reference (docker/distribution's wording)."""


@dataclass(frozen=True)
class ImageReference:
    """A parsed, normalised image reference: `docker.io/library/busybox:latest` for `busybox`."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def on(self, domain: str) -> ImageReference:
        """The same repository path, tag and digest in another registry."""
        return ImageReference(domain=domain, path=self.path, tag=self.tag, digest=self.digest)

    def __str__(self) -> str:
        # A digest names the content; Docker pulls by it and ignores a tag beside it.
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"


def parse_reference(image: str) -> ImageReference:
    """Parse as kubelet does (ParseNormalizedNamed, then `latest` when neither tag nor digest is given);
    raises InvalidReference with docker/distribution's message."""
    if not image:
        raise InvalidReference("repository name must have at least one component")
    if re.fullmatch(r"[a-f0-9]{64}", image):
        raise InvalidReference(f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings")
    slash = image.find("/")
    first = image[:slash]
    if slash == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DOCKER_HUB, image
    else:
        domain, remainder = first, image[slash + 1:]
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    colon = remainder.find(":")
    remote = remainder[:colon] if colon > -1 else remainder
    if remote.lower() != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    full = f"{domain}/{remainder}"
    match = _REFERENCE.match(full)
    if match is None:
        if _REFERENCE.match(full.lower()):
            raise InvalidReference("invalid reference format: repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    if len(name) > _NAME_MAX:
        raise InvalidReference(f"repository name must not be more than {_NAME_MAX} characters")
    if digest:
        algorithm, _, hex_part = digest.partition(":")
        if algorithm not in _DIGEST_HEX_LENGTHS:
            raise InvalidReference("unsupported digest algorithm")
        if len(hex_part) != _DIGEST_HEX_LENGTHS[algorithm]:
            raise InvalidReference("invalid checksum digest length")
    return ImageReference(domain=domain, path=name[len(domain) + 1:], tag=tag if tag or digest else "latest",
                          digest=digest)


def default_pull_policy(image: str) -> str:
    """The API server's default: Always for `:latest` or no tag, otherwise IfNotPresent."""
    try:
        ref = parse_reference(image)
    except InvalidReference:
        return PULL_IF_NOT_PRESENT
    return PULL_ALWAYS if ref.digest is None and ref.tag == "latest" else PULL_IF_NOT_PRESENT


def should_pull(policy: str, present: bool) -> bool:
    """kubelet's shouldPullImage: Never never pulls, Always always does, IfNotPresent when absent."""
    if policy == PULL_NEVER:
        return False
    return policy == PULL_ALWAYS or (policy == PULL_IF_NOT_PRESENT and not present)


def parse_mirrors(text: str) -> dict[str, str]:
    """`host=mirror[,host=mirror...]` (SKIFF_REGISTRY_MIRRORS) as a mapping; empty text gives none."""
    mirrors: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, mirror = (part.strip() for part in item.partition("="))
        if not sep or not host or not mirror or "/" in host or "/" in mirror:
            raise ValueError(f"{MIRRORS_ENV}: {item!r} is not registry-host=mirror-host:port "
                             "(e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com=127.0.0.1:5000)")
        mirrors[host] = mirror
    return mirrors


@dataclass(frozen=True)
class ImageConfig:
    """Where images come from: the node's region and the registry mirrors (host in pod specs → host
    actually contacted)."""

    region: str
    registry_mirrors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ImageConfig:
        env = os.environ if environ is None else environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(region=region, registry_mirrors=parse_mirrors(env.get(MIRRORS_ENV, "")))


@dataclass(frozen=True)
class PullResult:
    """An image present on the engine. `image_ref_local` is what to pass to containers.create;
    `image_id` is Docker's id (`sha256:...`); `status_image_id` is the pod status's imageID as kubelet
    with Docker reports it (`docker-pullable://repo@sha256:...`, or `docker://sha256:...` for an image
    no registry knows). `pulled` tells whether a pull happened for this call (or a concurrent call it
    joined); `message` is kubelet's event text."""

    image_ref_local: str
    image_id: str
    pulled: bool
    seconds: float
    status_image_id: str
    message: str


@dataclass
class _Credential:
    username: str
    password: str
    refresh_at: float  # epoch seconds


class _Flight:
    """One pull in progress, which concurrent callers for the same image wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: PullResult | None = None
        self.error: Exception | None = None


def _default_ecr_client(region: str) -> Any:
    import boto3

    return boto3.client("ecr", region_name=region)


class ImagePuller:
    """Makes images present on a Docker engine per imagePullPolicy; safe to call from many threads.

    `ecr_client_factory(region)` makes the ECR client for a registry's region (ECR tokens are regional);
    `clock` gives epoch seconds (tests move it to check token expiry)."""

    def __init__(self, docker_client: Any, config: ImageConfig, *,
                 ecr_client_factory: Callable[[str], Any] = _default_ecr_client,
                 clock: Callable[[], float] = time.time) -> None:
        self.docker = docker_client
        self.config = config
        self._ecr_client_factory = ecr_client_factory
        self._clock = clock
        self._ecr_clients: dict[str, Any] = {}
        self._credentials: dict[str, _Credential] = {}
        self._credentials_lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()

    def ensure(self, image: str, policy: str, on_pull: Callable[[], None] | None = None) -> PullResult:
        """Make `image` (as written in the pod spec) present per `policy` (empty: the API's default);
        raises ImagePullError with kubelet's reason and message. `on_pull` is called when a pull is about
        to happen (kubelet's Pulling event)."""
        started = time.monotonic()
        try:
            ref = parse_reference(image)
        except InvalidReference as e:
            raise ImagePullError(INVALID_IMAGE_NAME, f"Failed to apply default image tag {image!r}: "
                                 f"couldn't parse image name {image!r}: {e}") from e
        policy = policy or default_pull_policy(image)
        mirror = self.config.registry_mirrors.get(ref.domain)
        source = ref.on(mirror) if mirror else ref
        # Docker keeps a digest reference only as pulled (it cannot tag one), so an image pinned by digest is
        # known locally by the name it was pulled with; a tag is known by the pod spec's own name (Docker
        # normalises it as parse_reference does), which a mirrored pull adds with a tag.
        local = str(source) if ref.digest else image
        inspected = self._inspect(image, local)
        if not should_pull(policy, inspected is not None):
            if inspected is None:
                raise ImagePullError(ERR_IMAGE_NEVER_PULL,
                                     f'Container image "{image}" is not present with pull policy of Never')
            return PullResult(image_ref_local=local, image_id=str(inspected["Id"]), pulled=False,
                              seconds=time.monotonic() - started,
                              status_image_id=self._status_image_id(inspected, ref, source),
                              message=f'Container image "{image}" already present on machine')
        if on_pull is not None:
            on_pull()
        return self._pull_once(local, lambda: self._pull(image, ref, source, local, started))

    # -- pulling ---------------------------------------------------------------------------------------

    def _pull_once(self, key: str, pull: Callable[[], PullResult]) -> PullResult:
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader:
            try:
                flight.result = pull()
                return flight.result
            except Exception as e:
                flight.error = e
                raise
            finally:
                with self._flights_lock:
                    del self._flights[key]
                flight.done.set()
        flight.done.wait()
        if isinstance(flight.error, ImagePullError):
            raise ImagePullError(flight.error.reason, flight.error.message) from flight.error
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result

    def _pull(self, image: str, ref: ImageReference, source: ImageReference, local: str,
              started: float) -> PullResult:
        import docker.errors

        mirrored = source.domain != ref.domain
        via = f" (through the registry mirror {source.domain})" if mirrored else ""
        auth = self._auth_config(image, ref.domain, source.domain)
        try:
            stream = self.docker.api.pull(source.repository, tag=source.digest or source.tag, stream=True,
                                          decode=True, auth_config=auth)
            for message in stream:
                if "error" in message:
                    detail = (message.get("errorDetail") or {}).get("message") or message["error"]
                    raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": {detail}{via}')
            if mirrored and not ref.digest:
                self.docker.api.tag(str(source), ref.repository, ref.tag, force=True)
        except docker.errors.APIError as e:
            detail = e.explanation or str(e)
            raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": {detail}{via}') from e
        except docker.errors.DockerException as e:
            raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": {e}{via}') from e
        inspected = self._inspect(image, local)
        if inspected is None:
            raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": Docker reported success '
                                 f"but {local} is not on the engine{via}")
        seconds = time.monotonic() - started
        log.info("pulled %s%s in %.3fs", image, via, seconds)
        return PullResult(image_ref_local=local, image_id=str(inspected["Id"]), pulled=True, seconds=seconds,
                          status_image_id=self._status_image_id(inspected, ref, source),
                          message=f'Successfully pulled image "{image}" in {seconds:.3f}s')

    def _inspect(self, image: str, local: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            inspected: dict[str, Any] = self.docker.api.inspect_image(local)
            return inspected
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as e:
            raise ImagePullError(ERR_IMAGE_INSPECT, f'Failed to inspect image "{image}": {e}') from e

    @staticmethod
    def _status_image_id(inspected: Mapping[str, Any], ref: ImageReference, source: ImageReference) -> str:
        """cri-dockerd's imageID: the repo digest (preferring the repository pulled, shown under the pod
        spec's registry rather than the mirror's), else the image id."""
        digests = [str(d) for d in inspected.get("RepoDigests") or []]
        names = {source.repository, _familiar(source.repository)}
        for d in digests:
            repo, _, digest = d.partition("@")
            if repo in names:
                shown = ref.repository if source.domain != ref.domain else repo
                return f"docker-pullable://{shown}@{digest}"
        if digests:
            return f"docker-pullable://{digests[0]}"
        return f"docker://{inspected['Id']}"

    # -- credentials -----------------------------------------------------------------------------------

    def _auth_config(self, image: str, registry: str, contacted: str) -> dict[str, str] | None:
        """Basic-auth credentials for `registry` (as named in the pod spec), presented to `contacted`;
        None (anonymous, or what the engine's own config holds) for registries other than ECR."""
        match = ECR_HOST.match(registry)
        if match is None:
            return None
        cred = self._ecr_credential(image, registry, account=match.group(1), region=match.group(2))
        return {"username": cred.username, "password": cred.password, "serveraddress": contacted}

    def _ecr_credential(self, image: str, registry: str, *, account: str, region: str) -> _Credential:
        with self._credentials_lock:
            cached = self._credentials.get(registry)
            if cached is not None and self._clock() < cached.refresh_at:
                return cached
            try:
                client = self._ecr_clients.get(region)
                if client is None:
                    client = self._ecr_clients[region] = self._ecr_client_factory(region)
                data = client.get_authorization_token(registryIds=[account])["authorizationData"][0]
                username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
            except Exception as e:  # botocore's errors (no credentials, endpoint down, access denied)
                raise ImagePullError(ERR_IMAGE_PULL, f'Failed to pull image "{image}": cannot get ECR '
                                     f"credentials for {registry}: {e}") from e
            expires = data.get("expiresAt")
            expires_at = expires.timestamp() if hasattr(expires, "timestamp") else float(expires or 0)
            cred = _Credential(username=username, password=password,
                               refresh_at=expires_at - ECR_REFRESH_MARGIN_SECONDS)
            self._credentials[registry] = cred
            log.debug("ECR credentials for %s valid until %s", registry, expires)
            return cred


def _familiar(repository: str) -> str:
    """Docker's short form of a Docker Hub repository (`busybox` for docker.io/library/busybox)."""
    for prefix in (f"{DOCKER_HUB}/library/", f"{DOCKER_HUB}/"):
        if repository.startswith(prefix):
            return repository[len(prefix):]
    return repository
