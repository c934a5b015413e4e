"""Writing a kubeconfig that points kubectl and client libraries at a Skiff API."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def write(path: Path, *, server: str, token: str, name: str = "skiff") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
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
