"""Build what the program uploads: the Lambda bundle (the Chalice app) and the node agent's wheel.

Why not `chalice package`: it wants a Chalice project layout and a CloudFormation/Terraform target,
and the program needs only the zip. The bundle holds what Chalice's packager would put in it: app.py,
chalicelib/, the packages of requirements.txt installed for Lambda's platform, and Chalice's runtime
(chalice/app.py and chalice/__init__.py, the two files its packager copies; app.py imports them).

Both builds are cached by a hash of their inputs and produce byte-identical files for the same
inputs (fixed timestamps, sorted entries), so `pulumi preview` shows no change when nothing changed.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAMBDA_ZIPPED_LIMIT = 50 * 1024 * 1024
"""Lambda's limit on a zip uploaded directly."""
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
"""Lambda's limit on a function's unzipped code (layers included)."""
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}


class BuildError(RuntimeError):
    """A bundle or wheel could not be built; the message says what to do."""


def _app_files(repo: Path) -> Iterator[tuple[Path, str]]:
    yield repo / "app.py", "app.py"
    yield from _tree(repo / "chalicelib", "chalicelib")
    import chalice
    import chalice.app

    yield Path(inspect.getfile(chalice.app)), "chalice/app.py"
    yield Path(inspect.getfile(chalice)), "chalice/__init__.py"


def _tree(root: Path, prefix: str) -> Iterator[tuple[Path, str]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / name
            yield path, f"{prefix}/{path.relative_to(root).as_posix()}" if prefix else path.relative_to(root).as_posix()


def _digest(paths: list[tuple[Path, str]], *extra: str) -> str:
    h = hashlib.sha256()
    for path, arcname in sorted(paths, key=lambda p: p[1]):
        h.update(arcname.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for item in extra:
        h.update(item.encode())
    return h.hexdigest()[:16]


def _write_zip(out: Path, entries: list[tuple[Path, str]]) -> None:
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path, arcname in sorted(entries, key=lambda p: p[1]):
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)


def build_lambda_bundle(out_dir: Path, *, repo: Path = REPO, python_version: str = "3.11",
                        platform: str = "manylinux2014_x86_64") -> Path:
    """The Lambda zip for the Chalice app (built once per distinct input, then reused)."""
    requirements = repo / "requirements.txt"
    app_files = list(_app_files(repo))
    key = _digest(app_files + [(requirements, "requirements.txt")], python_version, platform)
    out = out_dir / f"skiff-lambda-{key}.zip"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="skiff-lambda-") as tmp:
        deps = Path(tmp) / "deps"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(deps), "-r", str(requirements),
               # Lambda's platform, whatever machine runs the program: binary wheels for it only.
               "--platform", platform, "--python-version", python_version, "--implementation", "cp",
               "--only-binary=:all:"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"pip could not install {requirements} for Lambda ({platform}, Python "
                             f"{python_version}):\n{done.stderr.strip()}")
        entries = [(p, a) for p, a in _tree(deps, "") if not a.startswith("bin/")]
        _write_zip(out, entries + app_files)
    return out


def build_agent_wheel(out_dir: Path, *, agent_dir: Path | None = None) -> Path:
    """The node agent's wheel (`pip wheel --no-deps node-agent/`), cached by a hash of its sources."""
    agent_dir = agent_dir or REPO / "node-agent"
    if not (agent_dir / "pyproject.toml").exists():
        raise BuildError(f"{agent_dir}/pyproject.toml is missing: the node agent cannot be built, and the "
                         "worker nodes need it. Build it (pip wheel --no-deps node-agent/) or set "
                         "skiff:agentWheel to a wheel file.")
    sources = [(p, a) for p, a in _tree(agent_dir, "") if not a.startswith(("build/", "dist/"))]
    key = _digest(sources)
    target = out_dir / f"agent-{key}"
    wheels = sorted(target.glob("*.whl")) if target.exists() else []
    if wheels:
        return wheels[0]
    with tempfile.TemporaryDirectory(prefix="skiff-agent-") as tmp:
        # Build from a copy: setuptools writes build/ and *.egg-info into the source tree otherwise,
        # and node-agent/ is someone else's working directory.
        src = Path(tmp) / "src"
        shutil.copytree(agent_dir, src, ignore=shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info"))
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                               "--no-deps", "--wheel-dir", str(Path(tmp) / "wheels"), str(src)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"pip wheel --no-deps {agent_dir} failed:\n{done.stderr.strip()}")
        built = sorted((Path(tmp) / "wheels").glob("*.whl"))
        if len(built) != 1:
            raise BuildError(f"pip wheel {agent_dir} made {len(built)} wheels, expected one")
        target.mkdir(parents=True, exist_ok=True)
        final = target / built[0].name
        shutil.copyfile(built[0], final)
    return final


def unzipped_size(bundle: Path) -> int:
    with zipfile.ZipFile(bundle) as zf:
        return sum(info.file_size for info in zf.infolist())
