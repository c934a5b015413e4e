"""The labels and names the agent puts on its Docker containers and volumes.

Why this exists: the labels are the agent's memory (DESIGN.md invariant 7). Every container carries
its node, pod uid, pod name and namespace, container name, kind and attempt, so an agent restarted
after a crash finds what it was running, adopts it, never starts an attempt twice (the Docker name
is unique per attempt, so a second create of the same attempt fails instead of duplicating), and
removes containers of pods that no longer exist.
"""

from __future__ import annotations

import re
from typing import Any

PREFIX = "io.skiff"
NODE = f"{PREFIX}.node"
POD_UID = f"{PREFIX}.pod.uid"
POD_NAME = f"{PREFIX}.pod.name"
POD_NAMESPACE = f"{PREFIX}.pod.namespace"
CONTAINER = f"{PREFIX}.container.name"
KIND = f"{PREFIX}.container.kind"  # sandbox, init, sidecar, container
ATTEMPT = f"{PREFIX}.container.attempt"
GRACE = f"{PREFIX}.pod.grace"
SANDBOX = "POD"

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text)


def container_name(node: str, metadata: dict[str, Any], container: str, attempt: int) -> str:
    """A Docker name unique per (node, pod uid, container, attempt), readable in `docker ps`."""
    uid = str(metadata.get("uid") or "")
    return _safe(f"skiff_{container}_{metadata.get('name')}_{metadata.get('namespace')}_{uid[:13]}_{attempt}_{node}")


def container_labels(node: str, metadata: dict[str, Any], container: str, kind: str, attempt: int, *,
                     grace: int = 30) -> dict[str, str]:
    return {NODE: node, POD_UID: str(metadata.get("uid") or ""), POD_NAME: str(metadata.get("name") or ""),
            POD_NAMESPACE: str(metadata.get("namespace") or ""), CONTAINER: container, KIND: kind,
            ATTEMPT: str(attempt), GRACE: str(grace)}


def volume_name(node: str, uid: str, volume: str) -> str:
    return _safe(f"skiff_{uid}_{volume}_{node}")
