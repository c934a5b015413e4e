"""Pod and pod-template defaulting, and the QoS class of a pod.

A fresh pod read back from the API must look as it does from kube-apiserver (`kubectl get pod -o
yaml`), and the workload controllers compare templates after defaulting, so this follows
pkg/apis/core/v1/defaults.go: PodSpec, Container, Probe, HTTPGetAction, Volume and friends. Pods get
a few extras templates do not (requests copied from limits, enableServiceLinks, and the priority the
Priority admission plugin would set). Defaulting skips anything of the wrong type; validation reports it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.types.quantity import QuantityError, is_quantity, parse_quantity

Obj = dict[str, Any]

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)  # fmt: skip
DEFAULT_FILE_MODE = 0o644  # 420
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _maps(value: Any) -> list[Obj]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _unset(obj: Obj, key: str) -> bool:
    """Go's zero value: absent, null or empty string."""
    return obj.get(key) is None or obj.get(key) == ""


def image_tag(image: str) -> str:
    """The tag parsers.ParseImageName would see: "latest" when neither tag nor digest is given."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    if not tag and not digest:
        return "latest"
    return tag


def _valid_reference(image: str) -> bool:
    """Roughly what the reference parser accepts: no spaces, a lower-case repository, a non-empty tag."""
    name = image.partition("@")[0]
    if not name or any(c.isspace() for c in image):
        return False
    head, _, last = name.rpartition("/")
    repo, colon, tag = last.partition(":")
    if colon and not tag:
        return False
    host, _, rest = head.partition("/")
    if "." in host or ":" in host or host == "localhost":
        head = rest  # a registry host may have upper case; the repository may not
    return f"{head}/{repo}" == f"{head}/{repo}".lower()


def default_pull_policy(image: Any) -> str:
    if isinstance(image, str) and _valid_reference(image) and image_tag(image) == "latest":
        return "Always"
    return "IfNotPresent"


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        if _unset(action, "path"):
            action["path"] = "/"
        if _unset(action, "scheme"):
            action["scheme"] = "HTTP"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for name, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if probe.get(name) in (None, 0):
            probe[name] = value
    _default_http_get(probe.get("httpGet"))


def _default_field_refs(holder: Obj) -> None:
    field_ref = holder.get("fieldRef")
    if isinstance(field_ref, dict) and _unset(field_ref, "apiVersion"):
        field_ref["apiVersion"] = "v1"
    resource_ref = holder.get("resourceFieldRef")
    if isinstance(resource_ref, dict) and resource_ref.get("divisor") is None:
        resource_ref["divisor"] = "0"


def default_container(c: Obj) -> None:
    if _unset(c, "imagePullPolicy"):
        c["imagePullPolicy"] = default_pull_policy(c.get("image"))
    if _unset(c, "terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if _unset(c, "terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    if c.get("resources") is None:
        c["resources"] = {}
    for port in _maps(c.get("ports")):
        if _unset(port, "protocol"):
            port["protocol"] = "TCP"
    for env in _maps(c.get("env")):
        if isinstance(env.get("valueFrom"), dict):
            _default_field_refs(env["valueFrom"])
    for probe in PROBES:
        _default_probe(c.get(probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_http_get(lifecycle[hook].get("httpGet"))


def _default_mode(source: Any) -> None:
    if isinstance(source, dict) and source.get("defaultMode") is None:
        source["defaultMode"] = DEFAULT_FILE_MODE


def default_volume(v: Obj) -> None:
    if all(v.get(kind) is None for kind in VOLUME_SOURCES):
        v["emptyDir"] = {}
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        _default_mode(v.get(kind))
    downward = v.get("downwardAPI")
    if isinstance(downward, dict):
        for item in _maps(downward.get("items")):
            _default_field_refs(item)
    projected = v.get("projected")
    if isinstance(projected, dict):
        for source in _maps(projected.get("sources")):
            if isinstance(source.get("downwardAPI"), dict):
                for item in _maps(source["downwardAPI"].get("items")):
                    _default_field_refs(item)
            token = source.get("serviceAccountToken")
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
    host_path = v.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def default_pod_spec(spec: Obj, *, pod: bool) -> None:
    """SetDefaults_PodSpec and below; `pod` adds what only Pods (not templates) get."""
    if _unset(spec, "dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if _unset(spec, "restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if _unset(spec, "schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for kind in CONTAINER_LISTS:
        for c in _maps(spec.get(kind)):
            default_container(c)
    for v in _maps(spec.get("volumes")):
        default_volume(v)
    if not pod:
        return
    for kind in ("initContainers", "containers"):
        for c in _maps(spec.get(kind)):
            _requests_from_limits(c)
            if spec.get("hostNetwork") is True:
                for port in _maps(c.get("ports")):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    # What the Priority admission plugin sets when no priorityClassName is given.
    if spec.get("priority") is None and _unset(spec, "priorityClassName"):
        spec["priority"] = 0
    if _unset(spec, "preemptionPolicy"):
        spec["preemptionPolicy"] = "PreemptLowerPriority"


def _requests_from_limits(c: Obj) -> None:
    resources = c.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    if resources.get("requests") is None:
        resources["requests"] = {}
    if isinstance(resources["requests"], dict):
        for name, value in resources["limits"].items():
            if is_quantity(value):  # an unparseable limit is reported once, at limits
                resources["requests"].setdefault(name, value)


def _sum(into: dict[str, Decimal], resources: Any) -> set[str]:
    """Add the positive cpu/memory quantities of a resource list; the names found."""
    found: set[str] = set()
    if not isinstance(resources, dict):
        return found
    for name in ("cpu", "memory"):
        try:
            value = parse_quantity(resources[name]) if name in resources else Decimal(0)
        except QuantityError:
            continue
        if value > 0:
            into[name] = into.get(name, Decimal(0)) + value
            found.add(name)
    return found


def pod_qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, computed as kubelet's qos.GetPodQOS does.

    Requests missing where limits are given count as equal to the limits (pod defaulting copies them),
    so the answer is the same before and after defaulting.
    """
    spec = _dict(pod.get("spec"))
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for kind in ("containers", "initContainers"):
        for c in _maps(spec.get(kind)):
            res = _dict(c.get("resources"))
            lim = _dict(res.get("limits"))
            req = _dict(res.get("requests"))
            _sum(requests, {**lim, **req})
            if not {"cpu", "memory"} <= _sum(limits, lim):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
