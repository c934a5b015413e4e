"""The agent's view of Docker: sandboxes, labelled containers, volumes, exec.

Why this exists: it keeps the Docker SDK's details (low-level list filters, inspect shapes, the
pause image, port bindings on the node's address) out of the pod logic, and makes every container
it creates findable by its labels (invariant 7). A pod's sandbox is a tiny container that holds the
pod's network namespace (Docker's `--network container:<sandbox>`), so the pod keeps one IP while
its containers restart, and its containers share localhost.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tarfile
import threading
from dataclasses import dataclass
from typing import Any

from skiff_agent import labels as L

log = logging.getLogger("skiff.agent.runtime")

Obj = dict[str, Any]
PAUSE_IMAGE = "skiff/pause:1"
PAUSE_COMMAND = ["/bin/busybox", "sleep", "2147483647"]


class RuntimeError_(Exception):
    """Docker refused something; the message says what."""


@dataclass(frozen=True)
class ContainerRecord:
    """One container of this node, as Docker's list shows it (labels say what it is)."""

    id: str
    labels: dict[str, str]
    state: str  # created, running, exited, dead, paused, restarting, removing

    @property
    def pod_uid(self) -> str:
        return self.labels.get(L.POD_UID, "")

    @property
    def container(self) -> str:
        return self.labels.get(L.CONTAINER, "")

    @property
    def kind(self) -> str:
        return self.labels.get(L.KIND, "")

    @property
    def attempt(self) -> int:
        try:
            return int(self.labels.get(L.ATTEMPT, "0"))
        except ValueError:
            return 0

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting", "paused")


def build_pause_image(client: Any, name: str = PAUSE_IMAGE) -> None:
    """The sandbox image, made locally from the node's static busybox (no registry needed)."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise RuntimeError_("the sandbox image needs a static busybox on the node (Debian: busybox-static), "
                            "or set SKIFF_SANDBOX_IMAGE to a pause image the node can pull")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        info = tarfile.TarInfo("tmp")
        info.type = tarfile.DIRTYPE
        info.mode = 0o1777
        tar.addfile(info)
    repository, _, tag = name.partition(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag or "latest",
                                      changes=[f'CMD {PAUSE_COMMAND!r}'.replace("'", '"')])
    log.info("built the sandbox image %s from %s", name, busybox)


class Runtime:
    """Docker, scoped to one node's containers."""

    def __init__(self, client: Any, node_name: str, *, sandbox_image: str = PAUSE_IMAGE,
                 host_port_address: str = "0.0.0.0") -> None:
        self.client = client
        self.node = node_name
        self.sandbox_image = sandbox_image
        self.host_port_address = host_port_address
        self._image_lock = threading.Lock()
        self._sandbox_image_ready = False

    # --- listing ---

    def containers(self, pod_uid: str | None = None) -> list[ContainerRecord]:
        filters = [f"{L.NODE}={self.node}"]
        if pod_uid:
            filters.append(f"{L.POD_UID}={pod_uid}")
        raw = self.client.api.containers(all=True, filters={"label": filters})
        return [ContainerRecord(id=c["Id"], labels=dict(c.get("Labels") or {}), state=str(c.get("State") or ""))
                for c in raw]

    def inspect(self, container_id: str) -> Obj | None:
        import docker.errors

        try:
            return dict(self.client.api.inspect_container(container_id))
        except docker.errors.NotFound:
            return None

    # --- sandboxes ---

    def ensure_sandbox_image(self) -> None:
        import docker.errors

        with self._image_lock:
            if self._sandbox_image_ready:
                return
            try:
                self.client.api.inspect_image(self.sandbox_image)
            except docker.errors.ImageNotFound:
                if self.sandbox_image != PAUSE_IMAGE:
                    self.client.images.pull(self.sandbox_image)
                else:
                    build_pause_image(self.client, self.sandbox_image)
            self._sandbox_image_ready = True

    def create_sandbox(self, pod: Obj, attempt: int, ports: dict[str, Any]) -> str:
        """Create and start the pod's sandbox; its id."""
        from skiff_agent.containerspec import _grace

        self.ensure_sandbox_image()
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        bindings = {k: (self.host_port_address, v) for k, v in ports.items()}
        kwargs: Obj = {
            "image": self.sandbox_image, "command": PAUSE_COMMAND if self.sandbox_image == PAUSE_IMAGE else None,
            "name": L.container_name(self.node, md, L.SANDBOX, attempt),
            "labels": L.container_labels(self.node, md, L.SANDBOX, "sandbox", attempt, grace=_grace(pod)),
            "detach": True, "init": True, "ports": bindings or None,
            "hostname": str(spec.get("hostname") or md.get("name") or "")[:63],
            "ipc_mode": "shareable",
        }
        if spec.get("hostNetwork"):
            kwargs["network_mode"] = "host"
            kwargs.pop("hostname")
            kwargs.pop("ports")
        return self.run(kwargs)

    def ip_of(self, container_id: str) -> str:
        info = self.inspect(container_id) or {}
        settings = info.get("NetworkSettings") or {}
        ip = str(settings.get("IPAddress") or "")
        if not ip:
            for net in (settings.get("Networks") or {}).values():
                ip = str(net.get("IPAddress") or "")
                if ip:
                    break
        return ip

    # --- containers ---

    def run(self, kwargs: Obj) -> str:
        """Create and start a container; its id. A name already taken means this attempt exists: it is
        never created twice (the caller adopts what is there)."""
        import docker.errors

        try:
            container = self.client.containers.create(**kwargs)
        except docker.errors.APIError as e:
            if e.status_code == 409:
                existing = self.client.containers.get(kwargs["name"])
                log.warning("container %s exists already (attempt made before a restart); adopting it",
                            kwargs["name"])
                if existing.status == "created":
                    existing.start()
                return str(existing.id)
            raise RuntimeError_(_explain(e)) from e
        try:
            container.start()
        except docker.errors.APIError as e:
            raise StartError(str(container.id), _explain(e)) from e
        return str(container.id)

    def stop(self, container_id: str, grace: int) -> None:
        """SIGTERM, wait up to `grace` seconds, SIGKILL (docker stop does exactly that)."""
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.stop(container_id, timeout=max(0, grace))

    def kill(self, container_id: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            self.client.api.kill(container_id)

    def remove(self, container_id: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(container_id, force=True, v=False)

    def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        """Run a command in the container; (exit code, output). A timeout counts as failure (-1)."""
        result: list[Any] = []

        def target() -> None:
            try:
                exec_id = self.client.api.exec_create(container_id, command, stdout=True, stderr=True)["Id"]
                output = self.client.api.exec_start(exec_id)
                code = self.client.api.exec_inspect(exec_id).get("ExitCode")
                result.append((int(code if code is not None else -1), output.decode("utf-8", "replace")))
            except Exception as e:  # noqa: BLE001 - a probe that cannot run fails
                result.append((-1, str(e)))

        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            return -1, f"command timed out after {timeout:g}s"
        code, out = result[0]
        return code, out

    # --- volumes ---

    def ensure_volume(self, name: str, pod_uid: str, *, tmpfs: bool = False) -> str:
        import docker.errors

        try:
            self.client.api.inspect_volume(name)
        except docker.errors.NotFound:
            opts = {"type": "tmpfs", "device": "tmpfs", "o": "mode=1777"} if tmpfs else None
            self.client.api.create_volume(name=name, driver="local", driver_opts=opts,
                                          labels={L.NODE: self.node, L.POD_UID: pod_uid})
        return name

    def volumes(self, pod_uid: str | None = None) -> list[str]:
        filters = [f"{L.NODE}={self.node}"]
        if pod_uid:
            filters.append(f"{L.POD_UID}={pod_uid}")
        answer = self.client.api.volumes(filters={"label": filters}) or {}
        return [str(v["Name"]) for v in answer.get("Volumes") or []]

    def remove_volume(self, name: str) -> None:
        import docker.errors

        try:
            self.client.api.remove_volume(name, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            log.warning("could not remove volume %s: %s", name, e)


class StartError(RuntimeError_):
    """The container was created but would not start (a bad command, say): kubelet's
    RunContainerError / StartError."""

    def __init__(self, container_id: str, message: str) -> None:
        super().__init__(message)
        self.container_id = container_id


def _explain(error: Any) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error)
