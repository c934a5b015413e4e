"""configMap volumes: a ConfigMap's keys as files in a directory the pod's containers mount read-only.

Why this exists: mounting configuration as files is how most applications read a ConfigMap. The agent
projects the keys (all of them, or the `items` named, with their paths and modes) into a directory of its
state on the node and bind-mounts it; each sync projects again, so an edited ConfigMap reaches running
containers as it does with kubelet (eventually, not atomically per key). A missing ConfigMap or key is a
VolumeError (kubelet's FailedMount) unless the volume or item is optional.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

Obj = dict[str, Any]
DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up; the message says why, as kubelet's FailedMount event does."""


def _relative(path: str, volume: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts:
        raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : invalid path {path!r}: must be '
                          "relative and may not contain '..'")
    return p


def project(directory: Path, volume: str, source: Obj, configmap: Obj | None) -> None:
    """Write the files of a configMap volume into `directory` (created; files no longer wanted removed)."""
    name = str(source.get("name") or "")
    if configmap is None:
        if source.get("optional"):
            configmap = {}
        else:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : configmap "{name}" not found')
    data = {**{k: str(v) for k, v in (configmap.get("data") or {}).items()}}
    mode_given = source.get("defaultMode")
    default_mode = DEFAULT_MODE if mode_given is None else int(mode_given)
    wanted: dict[PurePosixPath, tuple[str, int]] = {}
    items = source.get("items")
    if items:
        for item in items:
            key = str(item.get("key") or "")
            if key not in data:
                if source.get("optional"):
                    continue
                raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : configmap references '
                                  f'non-existent config key: {key}')
            mode = item.get("mode")
            wanted[_relative(str(item.get("path") or ""), volume)] = (data[key], int(mode if mode is not None
                                                                                      else default_mode))
    else:
        for key, value in data.items():
            wanted[_relative(key, volume)] = (value, default_mode)
    directory.mkdir(parents=True, exist_ok=True)
    for rel, (content, mode) in wanted.items():
        target = directory.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if target.read_text() == content and (target.stat().st_mode & 0o777) == mode:
                continue
        except OSError:
            pass
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(content)
        os.chmod(tmp, mode)
        tmp.replace(target)
    keep = {directory.joinpath(*rel.parts) for rel in wanted}
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
