"""The test and demo image, built on this machine without any registry.

No public registry is reachable from our machines or CI, so images cannot be pulled from Docker Hub.
This one is a root filesystem holding the static busybox from Debian's `busybox-static` (one binary,
no libraries) with links for the applets tests and demos use (`sh`, `sleep`, `httpd`, `nc`, ...),
imported with `docker import` (about 2 MB). `httpd -f -p 80 -h /var/www` serves HTTP for probes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

DEFAULT_NAME = "skiff-test/busybox:1"
BUSYBOX = Path("/usr/bin/busybox")
APPLETS = ("sh", "sleep", "echo", "cat", "ls", "httpd", "nc", "wget", "env", "true", "false", "kill", "mkdir",
           "grep", "head", "tail", "date", "hostname", "dd", "yes", "seq", "rm", "touch", "ps", "id", "wc",
           "test", "[")
INDEX_HTML = b"<html><body><h1>Skiff test image</h1></body></html>\n"


class TestImageError(Exception):
    """The test image cannot be built here; the message says what to install."""

    __test__ = False  # not a pytest test class


def _check_busybox(busybox: Path) -> None:
    if not busybox.exists():
        raise TestImageError(f"{busybox} is missing; the test image needs a static busybox "
                             "(apt-get install busybox-static)")
    proc = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=False)
    applets = set(proc.stdout.split())
    missing = [a for a in APPLETS if a not in applets]
    if proc.returncode != 0 or missing:
        raise TestImageError(f"{busybox} lacks the applets {missing or list(APPLETS)} "
                             "(is it busybox-static's binary? apt-get install busybox-static)")
    ldd = shutil.which("ldd")
    if ldd:  # a dynamically linked busybox would not start in an image without libraries
        linked = subprocess.run([ldd, str(busybox)], capture_output=True, text=True, check=False)
        if linked.returncode == 0 and "=>" in linked.stdout:
            raise TestImageError(f"{busybox} is dynamically linked; install busybox-static, which replaces it "
                                 "with a static binary")


def rootfs_tar(busybox: Path = BUSYBOX) -> bytes:
    """The image's root filesystem as an uncompressed tar stream."""
    _check_busybox(busybox)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, *, kind: bytes = tarfile.DIRTYPE, data: bytes = b"", mode: int = 0o755,
                link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("bin", "etc", "root", "var", "var/www", "proc", "sys", "dev"):
            add(d)
        add("tmp", mode=0o1777)
        add("bin/busybox", kind=tarfile.REGTYPE, data=busybox.read_bytes())
        for applet in APPLETS:
            add(f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        add("etc/passwd", kind=tarfile.REGTYPE, data=b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", mode=0o644)
        add("etc/group", kind=tarfile.REGTYPE, data=b"root:x:0:\nnogroup:x:65534:\n", mode=0o644)
        add("var/www/index.html", kind=tarfile.REGTYPE, data=INDEX_HTML, mode=0o644)
    return buf.getvalue()


def _present(docker_client: Any, name: str) -> str | None:
    import docker.errors

    try:
        return str(docker_client.api.inspect_image(name)["Id"])
    except docker.errors.ImageNotFound:
        return None


def ensure_test_image(docker_client: Any, name: str = DEFAULT_NAME, *, busybox: Path = BUSYBOX) -> str:
    """Import the test image as `name` unless it exists; returns its image id (`sha256:...`)."""
    existing = _present(docker_client, name)
    if existing:
        return existing
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        repository, tag = name, "latest"
    answer = docker_client.api.import_image_from_data(rootfs_tar(busybox), repository=repository, tag=tag,
                                                      changes=['CMD ["sh"]', "WORKDIR /"])
    image_id = _present(docker_client, name)
    if not image_id:
        raise TestImageError(f"docker import did not create {name}; the engine answered: {answer}")
    return image_id
