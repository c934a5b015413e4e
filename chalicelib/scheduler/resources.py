"""Pod requests and node capacity in the integer units the scheduler adds and compares.

kube-scheduler counts cpu in millicores and every other resource in whole units (Quantity.Value,
rounded up), and computes a pod's requests as resourcehelper.PodRequests does: app containers and
sidecars (init containers with restartPolicy Always) run together, so they add up; each ordinary init
container runs alone next to the sidecars started before it, so the pod needs the larger of the two;
pod-level requests (spec.resources) replace the containers' sum for the resources they name; the
RuntimeClass overhead comes on top. Scoring uses "non-zero" requests, where a container that asks
for no cpu or memory counts as 100m and 200MiB, so best-effort pods still spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from chalicelib.types.quantity import millicores, to_bytes

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100  # schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
_NON_ZERO_DEFAULTS = {CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST}

Resources = dict[str, int]


def is_scalar_resource(name: str) -> bool:
    """schedutil.IsScalarResourceName: extended (domain-prefixed), hugepages and attachable volumes."""
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


def is_tracked(name: str) -> bool:
    return name in (CPU, MEMORY, EPHEMERAL_STORAGE) or is_scalar_resource(name)


@lru_cache(maxsize=16384)
def _value(name: str, quantity: str | int | float) -> int:
    if name == CPU:
        return millicores(quantity)
    return to_bytes(quantity)


def resource_value(name: str, quantity: Any) -> int:
    """A quantity as the scheduler counts `name`: millicores for cpu, whole units otherwise."""
    try:
        return _value(name, quantity)
    except TypeError:  # unhashable: not a quantity the API would have admitted
        return _value(name, str(quantity))


def resource_list(values: Mapping[str, Any] | None) -> Resources:
    """A ResourceList (requests, overhead, allocatable) restricted to what the scheduler tracks."""
    if not values:
        return {}
    return {name: resource_value(name, q) for name, q in values.items() if is_tracked(name)}


def pod_count(quantity: Any) -> int:
    """Allocatable `pods` as an int (Quantity.Value); none given is 0, as upstream."""
    return resource_value(PODS, quantity) if quantity is not None else 0


def _add(into: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        into[name] = into.get(name, 0) + value


def _max_into(into: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        into[name] = max(into.get(name, 0), value)


def _container_requests(container: Mapping[str, Any], non_missing: Mapping[str, int] | None) -> Resources:
    requests = resource_list((container.get("resources") or {}).get("requests"))
    if non_missing:
        for name, value in non_missing.items():
            requests.setdefault(name, value)
    return requests


def _pod_level_requests(spec: Mapping[str, Any]) -> Resources:
    requests = (spec.get("resources") or {}).get("requests") or {}
    return {name: resource_value(name, q) for name, q in requests.items()
            if name in (CPU, MEMORY) or name.startswith("hugepages-")}


def pod_requests(spec: Mapping[str, Any], non_missing: Mapping[str, int] | None = None) -> Resources:
    """resourcehelper.PodRequests: containers, sidecars, init containers, pod-level requests, overhead."""
    requests: Resources = {}
    for container in spec.get("containers") or ():
        _add(requests, _container_requests(container, non_missing))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in spec.get("initContainers") or ():
        own = _container_requests(container, non_missing)
        if container.get("restartPolicy") == "Always":
            _add(requests, own)
            _add(sidecars, own)
            running = dict(sidecars)
        else:
            running = dict(own)
            _add(running, sidecars)
        _max_into(init_peak, running)
    _max_into(requests, init_peak)
    requests.update(_pod_level_requests(spec))
    _add(requests, resource_list(spec.get("overhead")))
    return requests


def pod_resources(spec: Mapping[str, Any]) -> tuple[Resources, int, int]:
    """The pod's requests, and its non-zero cpu and memory requests (framework.PodInfo.CalculateResource)."""
    requests = pod_requests(spec)
    if _pod_level_requests(spec):
        non_missing = {name: value for name, value in _NON_ZERO_DEFAULTS.items() if name not in requests}
    else:
        non_missing = _NON_ZERO_DEFAULTS
    non_zero = pod_requests(spec, non_missing) if non_missing else requests
    return requests, non_zero.get(CPU, 0), non_zero.get(MEMORY, 0)
