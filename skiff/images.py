"""`skiff image push`: put a local Docker image into the cluster's ECR repository.

Why this exists: users deploy their own images, and pods name them by their ECR reference
(`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`), as on AWS. Locally the repository is a
record in moto's ECR and the bytes go to the local registry that stands in for ECR's, with the
credentials moto's ECR hands out; the agents pull it back through the same mapping.
"""

from __future__ import annotations

import re

_PATH = r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
_TARGET = re.compile(rf"^{_PATH}:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}$")


class PushError(Exception):
    """Why the push failed, worded for the person who ran it."""


def push_image(image: str, target: str, *, registry: str, ecr_registry: str) -> str:
    """Push local `image` as `target` (repository:tag); the reference pods use."""
    import boto3
    import docker
    import docker.errors

    from skiff.registry import RegistryError, ensure_repository, push, registry_password_from_ecr

    if not _TARGET.match(target):
        raise PushError(f"{target!r} is not repository:tag (lowercase repository path, a tag of letters, digits, "
                        "'_', '.', '-'), e.g. myapp:v1")
    try:
        client = docker.from_env(timeout=300)
        client.images.get(image)
    except docker.errors.ImageNotFound as e:
        raise PushError(f"there is no local image {image!r} (docker images lists what there is)") from e
    except docker.errors.DockerException as e:
        raise PushError(f"Docker is not reachable: {e}") from e
    ecr = boto3.client("ecr")
    repository = target.rsplit(":", 1)[0]
    try:
        ensure_repository(ecr, repository)
        push(client, image, target, registry, registry_password_from_ecr(ecr))
    except RegistryError as e:
        raise PushError(str(e)) from e
    return f"{ecr_registry}/{target}"
