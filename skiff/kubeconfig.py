"""Writing a kubeconfig that points kubectl and client libraries at a Skiff API."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml


def write(path: Path, *, server: str, token: str, ca_cert: bytes | None = None, name: str = "skiff") -> Path:
    cluster: dict[str, str] = {"server": server}
    if ca_cert:
        cluster["certificate-authority-data"] = base64.b64encode(ca_cert).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin",
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.chmod(tmp, 0o600)  # it holds a credential
    tmp.replace(path)
    return path
