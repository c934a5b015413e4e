"""One pod's life on this node: sandbox, init containers, sidecars, containers, probes, restarts,
status, and graceful deletion.

Why this exists: like kubelet's pod workers, each pod bound here gets a worker thread that converges
the pod's containers on its spec whenever it is woken (a watch event, a Docker event, a probe or
back-off coming due) and at least every few seconds. Every decision is made from Docker's labelled
containers, not from memory, so a restarted agent picks up where the last one stopped: the latest
attempt of each container is what runs, and a new attempt is created only when the latest one has
ended and the restart policy says so (invariant 7). The worker writes the pod's status only when it
changed.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from skiff_agent import configvolumes, containerspec
from skiff_agent import labels as L
from skiff_agent.api import MERGE_PATCH, ApiError, ApiUnreachable, Transport
from skiff_agent.images import ImagePullError
from skiff_agent.probes import Outcome, Prober, run_probe
from skiff_agent.runtime import ContainerRecord, Runtime, RuntimeError_, StartError
from skiff_agent.status import ContainerView, comparable, conditions, phase

log = logging.getLogger("skiff.agent.pod")

Obj = dict[str, Any]
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0  # a container that ran this long without trouble starts over at 10 s
RESYNC_SECONDS = 5.0
PENDING_QUIET_SECONDS = 2.0  # a pod still creating is reported Pending only after this long


class Events(Protocol):
    def event(self, involved: Obj, namespace: str, reason: str, message: str, kind: str = "Normal") -> None: ...


class Puller(Protocol):
    def ensure(self, image: str, policy: str, on_pull: Callable[[], None] | None = None) -> Any: ...


class Shipper(Protocol):
    def follow(self, container_id: str, stream: str) -> None: ...


@dataclass
class NodeContext:
    """What every pod worker of a node shares."""

    node_name: str
    host_ip: str
    api: Transport
    runtime: Runtime
    images: Puller
    events: Events
    logs: Shipper | None = None
    stream_name: Callable[[str, str, str, str, int], str] | None = None
    configmaps: containerspec.ConfigMapGetter | None = None
    clock: Callable[[], float] = time.monotonic
    volume_root: Path = Path(tempfile.gettempdir()) / "skiff-agent-volumes"  # configMap volumes' files
    backoff_initial: float = BACKOFF_INITIAL
    backoff_max: float = BACKOFF_MAX
    status_writes: dict[str, int] = field(default_factory=dict)  # pod uid -> status writes (for benchmarks)


class BackOff:
    """Kubernetes' per-container restart back-off: the first restart is immediate, then 10 s doubling to
    5 min; a container that ran 10 min without trouble starts over."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX) -> None:
        self.initial = initial
        self.maximum = maximum
        self.delay = 0.0
        self.until = 0.0
        self.restarts = 0
        self.for_id = ""  # the container exit this back-off was computed for

    def next(self, finished: float, ran_for: float) -> float:
        if ran_for >= BACKOFF_RESET_AFTER:
            self.restarts = 0
        self.delay = 0.0 if self.restarts == 0 else min(self.maximum, self.initial * 2 ** (self.restarts - 1))
        self.restarts += 1
        self.until = finished + self.delay
        return self.delay

    def resume(self, restart_count: int) -> None:
        self.restarts = restart_count


def docker_time(value: str | None) -> str | None:
    """Docker's RFC 3339 with nanoseconds as Kubernetes' seconds; None for Docker's zero time."""
    if not value or value.startswith("0001-"):
        return None
    return value[:19] + "Z"


def _seconds(value: str | None) -> float:
    if not value or value.startswith("0001-"):
        return 0.0
    try:
        return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminated_state(info: Obj) -> Obj:
    """A container's terminated state from Docker's inspect."""
    state = info.get("State") or {}
    code = int(state.get("ExitCode") or 0)
    if state.get("OOMKilled"):
        reason = "OOMKilled"
    elif state.get("Error"):
        reason = "StartError"
    else:
        reason = "Completed" if code == 0 else "Error"
    out: Obj = {"exitCode": code, "reason": reason, "startedAt": docker_time(state.get("StartedAt")),
                "finishedAt": docker_time(state.get("FinishedAt")), "containerID": f"docker://{info.get('Id')}"}
    if state.get("Error"):
        out["message"] = str(state["Error"])
    if out["startedAt"] is None:
        out["startedAt"] = out["finishedAt"]
    return out


class PodWorker:
    """Converges one pod. `update()` hands it the pod as the API last showed it; `gone()` says it left."""

    def __init__(self, node: NodeContext, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        md = pod.get("metadata") or {}
        self.uid = str(md.get("uid") or "")
        self.namespace = str(md.get("namespace") or "default")
        self.name = str(md.get("name") or "")
        self.finished = False  # the worker ended (pod deleted and cleaned up)
        self._gone = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._inspect_cache: dict[tuple[str, str], Obj] = {}
        self._probers: dict[str, dict[str, Prober]] = {}  # container id -> kind -> prober
        self._backoff: dict[str, BackOff] = {}
        self._pull_backoff: dict[str, BackOff] = {}
        self._waiting: dict[str, tuple[str, str]] = {}  # container name -> (reason, message) before it exists
        self._image_ids: dict[str, str] = {}
        self._announced: set[tuple[str, str]] = set()  # (event reason, key) already recorded
        self._killed_by_probe: set[str] = set()
        self._reported: Obj | None = None
        self._seen_at = node.clock()
        self._start_time = str((pod.get("status") or {}).get("startTime") or "") or None
        self._next_due = 0.0
        self.sandbox_ip = str((pod.get("status") or {}).get("podIP") or "")

    # --- the thread ---

    def start(self) -> PodWorker:
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.namespace}/{self.name}", daemon=True)
        self._thread.start()
        return self

    def update(self, pod: Obj) -> None:
        with self._lock:
            self.pod = pod
        self._wake.set()

    def gone(self) -> None:
        """The pod no longer exists in the API: stop its containers and end."""
        self._gone = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """End the worker without touching the containers (the agent is shutting down)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set() and not self.finished:
            self._wake.clear()
            try:
                self.sync()
                failures = 0
            except Exception:  # noqa: BLE001 - the pod is retried; the agent keeps going
                failures += 1
                log.exception("pod %s/%s: sync failed (%d in a row)", self.namespace, self.name, failures)
                self._next_due = self.node.clock() + min(30.0, 2.0 ** failures)
            if self.finished:
                break
            wait = max(0.05, min(RESYNC_SECONDS, self._next_due - self.node.clock()))
            self._wake.wait(wait)

    # --- one pass ---

    def sync(self) -> None:
        with self._lock:
            pod = self.pod
        now = self.node.clock()
        self._next_due = now + RESYNC_SECONDS
        md = pod.get("metadata") or {}
        if self._gone or md.get("deletionTimestamp"):
            self._terminate(pod)
            return
        records = self.node.runtime.containers(self.uid)
        latest = _latest(records)
        spec = pod.get("spec") or {}
        policy = str(spec.get("restartPolicy") or "Always")
        if self._already_final(pod):
            self._report(pod, records)
            return
        sandbox = latest.get(L.SANDBOX)
        if sandbox is None or not sandbox.running:
            sandbox = self._new_sandbox(pod, sandbox, records)
            records = self.node.runtime.containers(self.uid)
            latest = _latest(records)
        elif not self.sandbox_ip:
            self.sandbox_ip = self.node.runtime.ip_of(sandbox.id)
        try:
            volumes, kinds = self._volumes(pod)
        except configvolumes.VolumeError as e:
            if ("FailedMount", str(e)) not in self._announced:
                self._announced.add(("FailedMount", str(e)))
                self._event("FailedMount", str(e), kind="Warning")
            self._report(pod, self.node.runtime.containers(self.uid))
            return
        ctx = containerspec.PodContext(pod=pod, node_name=self.node.node_name, host_ip=self.node.host_ip,
                                       pod_ip=self.sandbox_ip, sandbox_id=sandbox.id, volumes=volumes,
                                       volume_kinds=kinds)
        initialized = self._init_containers(pod, ctx, latest, policy, now)
        if initialized:
            for c in spec.get("containers") or []:
                self._converge(c, "container", ctx, latest.get(str(c.get("name"))), policy, now)
        records = self.node.runtime.containers(self.uid)  # what the steps above started or found ended
        self._probe(pod, records, now)
        self._prune(records)
        self._report(pod, records)

    def _already_final(self, pod: Obj) -> bool:
        """Succeeded or Failed is for ever: nothing is started again."""
        reported = self._reported or pod.get("status") or {}
        return str(reported.get("phase") or "") in ("Succeeded", "Failed")

    def _new_sandbox(self, pod: Obj, old: ContainerRecord | None, records: list[ContainerRecord]) -> ContainerRecord:
        attempt = old.attempt + 1 if old else 0
        if old is not None:
            log.warning("pod %s/%s: its sandbox %s stopped; making a new one and restarting its containers",
                        self.namespace, self.name, old.id[:12])
            self._event("SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            for r in records:
                if r.running:
                    self.node.runtime.kill(r.id)
            self.node.runtime.remove(old.id)
        sandbox_id = self.node.runtime.create_sandbox(pod, attempt, containerspec.host_ports(pod))
        self.sandbox_ip = (self.node.host_ip if (pod.get("spec") or {}).get("hostNetwork")
                           else self.node.runtime.ip_of(sandbox_id))
        return ContainerRecord(id=sandbox_id, labels={L.CONTAINER: L.SANDBOX, L.ATTEMPT: str(attempt)},
                               state="running")

    def _volumes(self, pod: Obj) -> tuple[dict[str, str], dict[str, str]]:
        """The pod's volumes, ready to mount: emptyDir as a Docker volume, configMap as a projected directory.
        VolumeError when one cannot be set up (the containers wait, as kubelet's do)."""
        volumes: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for v in (pod.get("spec") or {}).get("volumes") or []:
            name = str(v.get("name") or "")
            if "emptyDir" in v:
                medium = str((v.get("emptyDir") or {}).get("medium") or "")
                volumes[name] = self.node.runtime.ensure_volume(L.volume_name(self.node.node_name, self.uid, name),
                                                                self.uid, tmpfs=medium == "Memory")
                kinds[name] = "volume"
            elif "configMap" in v:
                source = v.get("configMap") or {}
                getter = self.node.configmaps or (lambda ns, n: None)
                directory = self.node.volume_root / self.uid / name
                configvolumes.project(directory, name, source, getter(self.namespace, str(source.get("name") or "")))
                volumes[name] = str(directory)
                kinds[name] = "bind"
        return volumes, kinds

    # --- init containers and sidecars ---

    def _init_containers(self, pod: Obj, ctx: containerspec.PodContext, latest: dict[str, ContainerRecord],
                         policy: str, now: float) -> bool:
        for c in (pod.get("spec") or {}).get("initContainers") or []:
            name = str(c.get("name"))
            record = latest.get(name)
            if c.get("restartPolicy") == "Always":  # a sidecar: started in order, kept running
                self._converge(c, "sidecar", ctx, record, "Always", now)
                record = _latest(self.node.runtime.containers(self.uid)).get(name)
                if record is None or not record.running or not self._started(record):
                    return False
                continue
            if record is not None and not record.running:
                info = self._inspect(record)
                if int((info.get("State") or {}).get("ExitCode") or 0) == 0:
                    continue  # done
            if record is not None and record.running:
                return False
            init_policy = "Never" if policy == "Never" else "OnFailure"
            self._converge(c, "init", ctx, record, init_policy, now)
            return False
        return True

    def _started(self, record: ContainerRecord) -> bool:
        startup = self._probers.get(record.id, {}).get("startup")
        return startup is None or startup.passing

    # --- one container ---

    def _converge(self, c: Obj, kind: str, ctx: containerspec.PodContext, record: ContainerRecord | None,
                  policy: str, now: float) -> None:
        name = str(c.get("name"))
        if record is not None and record.running:
            if record.id in self._killed_by_probe:
                return
            self._ensure_probers(c, record)
            self._follow_logs(record)
            return
        if record is not None:
            info = self._inspect(record)
            code = int((info.get("State") or {}).get("ExitCode") or 0)
            if record.state == "created":
                code = -1  # created but never started: start it as a new attempt
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if not restart:
                return
            backoff = self._backoff.setdefault(name, BackOff(self.node.backoff_initial, self.node.backoff_max))
            if backoff.for_id != record.id:  # this exit is new: the next restart waits longer
                state = info.get("State") or {}
                finished_wall = _seconds(state.get("FinishedAt")) or time.time()
                ran = finished_wall - (_seconds(state.get("StartedAt")) or finished_wall)
                if backoff.for_id == "" and record.attempt > 0:  # the agent restarted: resume the back-off
                    backoff.resume(record.attempt)
                backoff.next(now - max(0.0, time.time() - finished_wall), ran)
                backoff.for_id = record.id
            if now < backoff.until:
                reason = "CrashLoopBackOff"
                message = (f"back-off {_duration(backoff.delay)} restarting failed container={name} "
                           f"pod={self.name}_{self.namespace}({self.uid})")
                self._waiting[name] = (reason, message)
                if ("BackOff", record.id) not in self._announced:
                    self._announced.add(("BackOff", record.id))
                    self._event("BackOff", "Back-off restarting failed container " + name + " in pod " +
                                f"{self.name}_{self.namespace}({self.uid})", kind="Warning", field=_field(c, kind))
                self._next_due = min(self._next_due, backoff.until)
                return
        attempt = record.attempt + 1 if record is not None else 0
        self._start(c, kind, ctx, attempt, now)

    def _start(self, c: Obj, kind: str, ctx: containerspec.PodContext, attempt: int, now: float) -> None:
        name = str(c.get("name"))
        image = str(c.get("image") or "")
        field_path = _field(c, kind)
        pull_backoff = self._pull_backoff.get(name)
        if pull_backoff is not None and now < pull_backoff.until:
            self._waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            self._next_due = min(self._next_due, pull_backoff.until)
            return
        self._waiting[name] = ("ContainerCreating", "")
        try:
            pulled = self.node.images.ensure(
                image, str(c.get("imagePullPolicy") or ""),
                on_pull=lambda: self._event("Pulling", f'Pulling image "{image}"', field=field_path))
        except ImagePullError as e:
            backoff = self._pull_backoff.setdefault(name, BackOff(self.node.backoff_initial, self.node.backoff_max))
            backoff.restarts = max(1, backoff.restarts)
            backoff.next(now, 0.0)
            self._waiting[name] = (e.reason, e.message)
            text = e.message if e.message.startswith("Failed") else f'Failed to pull image "{image}": {e.message}'
            self._event("Failed", text, kind="Warning", field=field_path)
            self._event("Failed", f"Error: {e.reason}", kind="Warning", field=field_path)
            self._next_due = min(self._next_due, backoff.until)
            return
        self._pull_backoff.pop(name, None)
        self._image_ids[name] = str(getattr(pulled, "status_image_id", "") or getattr(pulled, "image_id", ""))
        if getattr(pulled, "message", ""):
            self._event("Pulled", str(pulled.message), field=field_path)
        try:
            getter = self.node.configmaps or (lambda ns, n: None)
            args = containerspec.create_args(c, ctx, getter, image=str(pulled.image_ref_local), kind=kind,
                                             attempt=attempt)
        except containerspec.ContainerConfigError as e:
            self._waiting[name] = ("CreateContainerConfigError", str(e))
            self._event("Failed", f"Error: {e}", kind="Warning", field=field_path)
            return
        try:
            container_id = self.node.runtime.run(args)
        except StartError as e:
            self._event("Failed", f"Error: failed to start container \"{name}\": {e}", kind="Warning",
                        field=field_path)
            self._waiting.pop(name, None)
            return
        except RuntimeError_ as e:
            self._waiting[name] = ("CreateContainerError", str(e))
            self._event("Failed", f"Error: {e}", kind="Warning", field=field_path)
            return
        self._waiting.pop(name, None)
        self._event("Created", f"Created container {name}", field=field_path)
        self._event("Started", f"Started container {name}", field=field_path)
        record = ContainerRecord(id=container_id, labels={L.CONTAINER: name, L.ATTEMPT: str(attempt), L.KIND: kind},
                                 state="running")
        self._ensure_probers(c, record)
        self._follow_logs(record)

    def _follow_logs(self, record: ContainerRecord) -> None:
        if self.node.logs is None or self.node.stream_name is None:
            return
        try:
            stream = self.node.stream_name(self.namespace, self.name, self.uid, record.container, record.attempt)
            self.node.logs.follow(record.id, stream)
        except Exception:  # noqa: BLE001 - logs are best effort; the container runs regardless
            log.exception("pod %s/%s: could not follow the logs of %s", self.namespace, self.name, record.container)

    # --- probes ---

    def _ensure_probers(self, c: Obj, record: ContainerRecord) -> None:
        if record.id in self._probers:
            return
        info = self._inspect(record, fresh=True)
        started_wall = _seconds((info.get("State") or {}).get("StartedAt")) or time.time()
        started = self.node.clock() - max(0.0, time.time() - started_wall)
        probers = {}
        for kind in ("startup", "liveness", "readiness"):
            probe = c.get(f"{kind}Probe")
            if probe:
                probers[kind] = Prober(kind, probe, started)
        self._probers[record.id] = probers

    def _probe(self, pod: Obj, records: list[ContainerRecord], now: float) -> None:
        specs = {str(c.get("name")): c for c in [*((pod.get("spec") or {}).get("initContainers") or []),
                                                 *((pod.get("spec") or {}).get("containers") or [])]}
        live = {r.id for r in records if r.running}
        for cid in list(self._probers):
            if cid not in live:
                del self._probers[cid]
        for record in records:
            if not record.running or record.kind == "sandbox" or record.id in self._killed_by_probe:
                continue
            c = specs.get(record.container)
            probers = self._probers.get(record.id)
            if c is None or not probers:
                continue
            startup = probers.get("startup")
            order = ["startup"] if startup is not None and not startup.passing else ["liveness", "readiness"]
            for kind in order:
                prober = probers.get(kind)
                if prober is None:
                    continue
                if not prober.due(now):
                    self._next_due = min(self._next_due, prober.next_due)
                    continue
                outcome = run_probe(prober.probe, c, self.sandbox_ip, functools.partial(self._exec, record.id))
                self._record_probe(prober, outcome, record, c, now)
                self._next_due = min(self._next_due, prober.next_due)

    def _exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        return self.node.runtime.exec(container_id, command, timeout)

    def _record_probe(self, prober: Prober, outcome: Outcome, record: ContainerRecord, c: Obj, now: float) -> None:
        prober.record(outcome, self.node.clock())
        if not outcome.ok:
            self._event("Unhealthy", f"{prober.kind.capitalize()} probe failed: {outcome.message}", kind="Warning",
                        field=_field(c, record.kind))
        if prober.kind in ("liveness", "startup") and not prober.passing and \
                prober.failures >= prober.failure_threshold:
            verb = "liveness" if prober.kind == "liveness" else "startup"
            self._event("Killing", f"Container {record.container} failed {verb} probe, will be restarted",
                        field=_field(c, record.kind))
            self._killed_by_probe.add(record.id)
            grace = int(prober.probe.get("terminationGracePeriodSeconds") or
                        (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 30)
            threading.Thread(target=self._stop_then_wake, args=(record.id, grace), daemon=True).start()

    def _stop_then_wake(self, container_id: str, grace: int) -> None:
        self.node.runtime.stop(container_id, grace)
        self._killed_by_probe.discard(container_id)
        self._inspect_cache = {k: v for k, v in self._inspect_cache.items() if k[0] != container_id}
        self.wake()

    # --- housekeeping ---

    def _inspect(self, record: ContainerRecord, *, fresh: bool = False) -> Obj:
        key = (record.id, record.state)
        if fresh or key not in self._inspect_cache:
            info = self.node.runtime.inspect(record.id) or {}
            self._inspect_cache[key] = info
        return self._inspect_cache[key]

    def _prune(self, records: list[ContainerRecord]) -> None:
        """Keep the latest and the previous attempt of each container (for lastState); remove older ones."""
        by_name: dict[str, list[ContainerRecord]] = {}
        for r in records:
            by_name.setdefault(r.container, []).append(r)
        for name, rs in by_name.items():
            rs.sort(key=lambda r: r.attempt)
            keep = 1 if name == L.SANDBOX else 2
            for r in rs[:-keep]:
                if not r.running:
                    self.node.runtime.remove(r.id)
                    self._inspect_cache = {k: v for k, v in self._inspect_cache.items() if k[0] != r.id}

    # --- status ---

    def _views(self, pod: Obj, latest: dict[str, ContainerRecord], records: list[ContainerRecord],
               specs: list[Obj], kind: str) -> list[ContainerView]:
        views = []
        for c in specs:
            name = str(c.get("name"))
            sidecar = kind == "init" and c.get("restartPolicy") == "Always"
            view = ContainerView(name=name, image=str(c.get("image") or ""), sidecar=sidecar,
                                 image_id=self._image_ids.get(name, ""))
            record = latest.get(name)
            if record is not None:
                info = self._inspect(record)
                view.restart_count = record.attempt
                view.container_id = f"docker://{record.id}"
                if not view.image_id and info.get("Image"):
                    view.image_id = f"docker://{info['Image']}"
                previous = [r for r in records if r.container == name and r.attempt < record.attempt]
                if previous:
                    prev = max(previous, key=lambda r: r.attempt)
                    view.last_state = {"terminated": terminated_state(self._inspect(prev))}
                if record.running and record.id not in self._killed_by_probe:
                    started_at = docker_time((info.get("State") or {}).get("StartedAt")) or _now()
                    view.state = {"running": {"startedAt": started_at}}
                    probers = self._probers.get(record.id, {})
                    view.started = self._started(record)
                    readiness = probers.get("readiness")
                    view.ready = view.started and (readiness is None or readiness.passing)
                elif record.running:
                    view.state = {"running": {"startedAt": docker_time((info.get("State") or {}).get("StartedAt"))}}
                else:
                    info = self._inspect(record, fresh=record.state != "exited")
                    terminated = terminated_state(info)
                    waiting = self._waiting.get(name)
                    if waiting and waiting[0] != "ContainerCreating":
                        view.state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
                        view.last_state = {"terminated": terminated}
                    else:
                        view.state = {"terminated": terminated}
            else:
                reason, message = self._waiting.get(name, ("PodInitializing" if kind == "container" and
                                                           (pod.get("spec") or {}).get("initContainers")
                                                           else "ContainerCreating", ""))
                view.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
            views.append(view)
        return views

    def build_status(self, pod: Obj, records: list[ContainerRecord]) -> Obj:
        spec = pod.get("spec") or {}
        latest = _latest(records)
        policy = str(spec.get("restartPolicy") or "Always")
        init_views = self._views(pod, latest, records, spec.get("initContainers") or [], "init")
        views = self._views(pod, latest, records, spec.get("containers") or [], "container")
        initialized = all((v.sidecar and v.started) or
                          (not v.sidecar and v.terminated is not None and v.terminated.get("exitCode") == 0)
                          for v in init_views)
        pod_phase = phase(policy, init_views, True, initialized, views)
        if pod_phase in ("Running", "Succeeded", "Failed") and not self._start_time:
            self._start_time = _now()
        sandbox = latest.get(L.SANDBOX)
        sandbox_ready = sandbox is not None and sandbox.running
        containers_ready = initialized and all(v.ready for v in views) and \
            all(v.ready for v in init_views if v.sidecar)
        now = _now()
        old = pod.get("status") or {}
        status: Obj = {
            "phase": pod_phase,
            "conditions": conditions(self._previous_conditions(old), sandbox_ready=sandbox_ready,
                                     initialized=initialized, containers_ready=containers_ready,
                                     pod_phase=pod_phase, now=now),
            "hostIP": self.node.host_ip, "hostIPs": [{"ip": self.node.host_ip}],
            "podIP": self.sandbox_ip or None, "podIPs": [{"ip": self.sandbox_ip}] if self.sandbox_ip else None,
            "startTime": self._start_time or now,
            "containerStatuses": [v.as_status() for v in views],
            "qosClass": old.get("qosClass") or _qos(spec),
        }
        if init_views:
            status["initContainerStatuses"] = [v.as_status() for v in init_views]
        return status

    def _previous_conditions(self, seen: Obj) -> list[Obj]:
        """The conditions to compute transitions from: those this worker wrote last, not the API's copy,
        which lags until the watch echoes the write back (reading it would make every pass look like a
        transition, and each one a write). Conditions others set (a scheduler, readiness gates) still
        come from the API."""
        if self._reported is None:
            return list(seen.get("conditions") or [])
        mine = {str(c.get("type")): c for c in self._reported.get("conditions") or []}
        merged = [mine.pop(str(c.get("type")), c) for c in seen.get("conditions") or []]
        return merged + list(mine.values())

    def _report(self, pod: Obj, records: list[ContainerRecord]) -> None:
        status = self.build_status(pod, records)
        if self._reported is not None and comparable(status) == comparable(self._reported):
            return
        creating = status["phase"] == "Pending" and all(
            "waiting" in s["state"] and s["state"]["waiting"].get("reason") in ("ContainerCreating", "PodInitializing")
            for s in status["containerStatuses"] + status.get("initContainerStatuses", []))
        if creating and self._reported is None and self.node.clock() - self._seen_at < PENDING_QUIET_SECONDS:
            self._next_due = min(self._next_due, self._seen_at + PENDING_QUIET_SECONDS)
            return  # most pods start within this: their first status write says Running
        path = f"/api/v1/namespaces/{quote(self.namespace)}/pods/{quote(self.name)}/status"
        try:
            self.node.api.request("PATCH", path, body={"status": status}, content_type=MERGE_PATCH)
        except ApiError as e:
            if e.status == 404:
                self.gone()
                return
            raise
        except ApiUnreachable as e:  # the containers go on; the status is written when the API is back
            log.warning("pod %s/%s: status not written (%s); trying again shortly", self.namespace, self.name, e)
            self._next_due = min(self._next_due, self.node.clock() + 2.0)
            return
        self._reported = status
        self.node.status_writes[self.uid] = self.node.status_writes.get(self.uid, 0) + 1

    # --- deletion ---

    def _terminate(self, pod: Obj) -> None:
        """Stop every container (SIGTERM, the grace period, SIGKILL), remove them and the pod's volumes,
        then confirm the deletion so the API removes the pod."""
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        grace = md.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
        grace = 30 if grace is None else int(grace)
        records = self.node.runtime.containers(self.uid)
        specs = {str(c.get("name")): c
                 for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
        apps = [r for r in records if r.running and r.kind in ("container", "init")]
        for r in apps:
            self._event("Killing", f"Stopping container {r.container}",
                        field=_field(specs.get(r.container) or {"name": r.container}, r.kind))
        self._stop_all(apps, grace)
        self._stop_all([r for r in records if r.running and r.kind == "sidecar"], grace)
        for r in self.node.runtime.containers(self.uid):
            self.node.runtime.remove(r.id)
        for volume in self.node.runtime.volumes(self.uid):
            self.node.runtime.remove_volume(volume)
        configvolumes.remove(self.node.volume_root / self.uid)
        if not self._gone:
            path = f"/api/v1/namespaces/{quote(self.namespace)}/pods/{quote(self.name)}"
            try:
                self.node.api.request("DELETE", path, query={"gracePeriodSeconds": "0"},
                                      body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                            "preconditions": {"uid": self.uid}})
            except ApiError as e:
                if e.status not in (404, 409):
                    raise
        log.info("pod %s/%s: stopped and removed", self.namespace, self.name)
        self.finished = True

    def _stop_all(self, records: list[ContainerRecord], grace: int) -> None:
        threads = [threading.Thread(target=self.node.runtime.stop, args=(r.id, grace), daemon=True) for r in records]
        for t in threads:
            t.start()
        for t in threads:
            t.join(grace + 10)

    # --- events ---

    def _event(self, reason: str, message: str, *, kind: str = "Normal", field: str = "") -> None:
        involved: Obj = {"apiVersion": "v1", "kind": "Pod", "name": self.name, "namespace": self.namespace,
                         "uid": self.uid}
        if field:
            involved["fieldPath"] = field
        self.node.events.event(involved, self.namespace, reason, message, kind)


def _latest(records: list[ContainerRecord]) -> dict[str, ContainerRecord]:
    out: dict[str, ContainerRecord] = {}
    for r in records:
        if r.container not in out or r.attempt > out[r.container].attempt:
            out[r.container] = r
    return out


def _field(c: Obj, kind: str) -> str:
    collection = "initContainers" if kind in ("init", "sidecar") else "containers"
    return f"spec.{collection}{{{c.get('name')}}}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m0s"


def _qos(spec: Obj) -> str:
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(lim.get("cpu") and lim.get("memory") and
                     req.get("cpu", lim["cpu"]) == lim["cpu"] and req.get("memory", lim["memory"]) == lim["memory"]
                     for req, lim in zip(requests, limits, strict=True))
    return "Guaranteed" if guaranteed else "Burstable"
