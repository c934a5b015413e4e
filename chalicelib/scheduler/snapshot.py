"""The cluster as one scheduling decision sees it: nodes, what is bound to them, and indexes.

The caller lists nodes and pods from the store and builds a `Snapshot`; `schedule` reads it and
never writes the store. As kube-scheduler's cache does, the snapshot accounts every pod bound to a
node (spec.nodeName) that has not finished (phase Succeeded or Failed); terminating pods still hold
their resources. After a decision the caller `add_pod`s the pod (upstream's "assume"), so the next
decision sees it before the binding is even written.

Per-node figures (`NodeInfo`) are plain ints so filters compare without parsing. Questions about many
pods at once ("how many pods matching this selector are in each zone") are answered from running
counts kept per distinct selector (`count_by_domain`), and existing pods' affinity terms are grouped
by identical term (`term_groups`): a decision costs O(distinct selectors), not O(pods).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.scheduler.podterms import NAMESPACE_NAME_LABEL, NO_TERMS, AffinityTerm, PodMatcher, PodTerms, pod_terms
from chalicelib.scheduler.resources import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    is_scalar_resource,
    pod_count,
    pod_resources,
    resource_list,
)
from chalicelib.scheduler.tolerations import DO_NOT_SCHEDULE_EFFECTS, PREFER_NO_SCHEDULE, taint_key

ZONE_LABEL, REGION_LABEL = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
HOSTNAME_LABEL = "kubernetes.io/hostname"
_BETA_ZONE, _BETA_REGION = "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region"
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
BIND_ALL_HOST_IP = "0.0.0.0"

# Kinds of existing pods' affinity terms, as InterPodAffinity uses them.
REQUIRED_AFFINITY, REQUIRED_ANTI_AFFINITY = "requiredAffinity", "requiredAntiAffinity"
PREFERRED_AFFINITY, PREFERRED_ANTI_AFFINITY = "preferredAffinity", "preferredAntiAffinity"
HostPort = tuple[str, str, int]


def _host_ports(spec: Mapping[str, Any]) -> list[HostPort]:
    """schedutil.GetHostPorts: host ports of containers and of sidecars, ip and protocol defaulted."""
    containers = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    containers += list(spec.get("containers") or ())
    ports: list[HostPort] = []
    for container in containers:
        for port in container.get("ports") or ():
            host_port = int(port.get("hostPort") or 0)
            if host_port > 0:
                ports.append((port.get("hostIP") or BIND_ALL_HOST_IP, port.get("protocol") or "TCP", host_port))
    return ports


class PodInfo:
    """A pod and what the scheduler derives from it once: requests, ports, tolerations, terms."""

    __slots__ = ("pod", "spec", "namespace", "name", "key", "labels", "node_name", "terminating",
                 "cpu", "memory", "ephemeral_storage", "scalar", "non0_cpu", "non0_memory",
                 "host_ports", "tolerations", "_terms", "cycle")

    def __init__(self, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.spec: Mapping[str, Any] = spec
        self.namespace: str = meta.get("namespace") or ""
        self.name: str = meta.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.labels: Mapping[str, str] = meta.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        self.terminating = bool(meta.get("deletionTimestamp"))
        requests, self.non0_cpu, self.non0_memory = pod_resources(spec)
        self.cpu = requests.get(CPU, 0)
        self.memory = requests.get(MEMORY, 0)
        self.ephemeral_storage = requests.get(EPHEMERAL_STORAGE, 0)
        self.scalar = {k: v for k, v in requests.items() if v and is_scalar_resource(k)}
        self.host_ports = _host_ports(spec)
        self.tolerations: Sequence[Mapping[str, Any]] = spec.get("tolerations") or ()
        self._terms: PodTerms | None = None
        self.cycle: dict[str, Any] = {}  # CycleState: what PreFilter/PreScore computed for Filter/Score

    @property
    def terms(self) -> PodTerms:
        """The pod's inter-pod affinity terms, parsed on first use."""
        if self._terms is None:
            self._terms = pod_terms(self.namespace, self.spec)
        return self._terms

    def __repr__(self) -> str:
        return f"PodInfo({self.key!r})"


def _allocatable(status: Mapping[str, Any]) -> dict[str, Any]:
    """status.allocatable, each resource falling back to status.capacity."""
    return {**(status.get("capacity") or {}), **(status.get("allocatable") or {})}


class NodeInfo:
    """A node, its allocatable resources, and the totals of the pods bound to it."""

    __slots__ = ("node", "name", "labels", "zone", "hostname", "unschedulable", "taints", "hard_taints",
                 "hard_taints_key", "prefer_taints", "allocatable_cpu", "allocatable_memory",
                 "allocatable_ephemeral_storage", "allowed_pods", "allocatable_scalar", "requested_cpu",
                 "requested_memory", "requested_ephemeral_storage", "requested_scalar", "non0_cpu",
                 "non0_memory", "pods", "used_ports", "free_cpu", "free_memory", "free_pods")

    def __init__(self, node: Mapping[str, Any], pods: Iterable[PodInfo] = ()) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.node = node
        self.name: str = meta.get("name") or ""
        self.labels: Mapping[str, str] = meta.get("labels") or {}
        self.zone: str = self.labels.get(ZONE_LABEL) or self.labels.get(_BETA_ZONE) or ""
        self.hostname: str = self.labels.get(HOSTNAME_LABEL) or ""
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints: Sequence[Mapping[str, Any]] = spec.get("taints") or ()
        self.hard_taints = tuple(t for t in self.taints if t.get("effect") in DO_NOT_SCHEDULE_EFFECTS)
        self.hard_taints_key = taint_key(self.hard_taints)
        self.prefer_taints = tuple(t for t in self.taints if t.get("effect") == PREFER_NO_SCHEDULE)
        allocatable = _allocatable(node.get("status") or {})
        resources = resource_list(allocatable)
        self.allocatable_cpu = resources.get(CPU, 0)
        self.allocatable_memory = resources.get(MEMORY, 0)
        self.allocatable_ephemeral_storage = resources.get(EPHEMERAL_STORAGE, 0)
        self.allowed_pods = pod_count(allocatable.get(PODS))
        self.allocatable_scalar = {k: v for k, v in resources.items() if is_scalar_resource(k)}
        self.requested_cpu = self.requested_memory = self.requested_ephemeral_storage = 0
        self.non0_cpu = self.non0_memory = 0
        self.requested_scalar: dict[str, int] = {}
        self.pods: list[PodInfo] = []
        # What is left, kept current so the resource filter is three comparisons.
        self.free_cpu, self.free_memory = self.allocatable_cpu, self.allocatable_memory
        self.free_pods = self.allowed_pods
        self.used_ports: dict[tuple[str, int], dict[str, int]] = {}  # (protocol, port) -> {ip: pods}
        for pod in pods:
            self.add_pod(pod)

    def add_pod(self, pod: PodInfo) -> None:
        """Account a pod bound to this node (NodeInfo.AddPod)."""
        self._account(pod, 1)
        self.pods.append(pod)

    def remove_pod(self, pod: PodInfo) -> bool:
        """Stop accounting a pod; False if it was not on this node."""
        for i, existing in enumerate(self.pods):
            if existing is pod or existing.key == pod.key:
                del self.pods[i]
                self._account(existing, -1)
                return True
        return False

    def _account(self, pod: PodInfo, sign: int) -> None:
        self.requested_cpu += sign * pod.cpu
        self.requested_memory += sign * pod.memory
        self.requested_ephemeral_storage += sign * pod.ephemeral_storage
        self.non0_cpu += sign * pod.non0_cpu
        self.non0_memory += sign * pod.non0_memory
        self.free_cpu -= sign * pod.cpu
        self.free_memory -= sign * pod.memory
        self.free_pods -= sign
        for name, value in pod.scalar.items():
            self.requested_scalar[name] = self.requested_scalar.get(name, 0) + sign * value
        for ip, protocol, port in pod.host_ports:
            ips = self.used_ports.setdefault((protocol, port), {})
            ips[ip] = ips.get(ip, 0) + sign
            if ips[ip] <= 0:
                del ips[ip]
                if not ips:
                    del self.used_ports[(protocol, port)]

    @property
    def host_ports(self) -> set[HostPort]:
        """The (ip, protocol, port) triples in use."""
        return {(ip, protocol, port) for (protocol, port), ips in self.used_ports.items() for ip in ips}

    def port_conflicts(self, ip: str, protocol: str, port: int) -> bool:
        """HostPortInfo.CheckConflict: 0.0.0.0 clashes with every ip, any ip with 0.0.0.0."""
        ips = self.used_ports.get((protocol, port))
        if not ips:
            return False
        return ip == BIND_ALL_HOST_IP or BIND_ALL_HOST_IP in ips or ip in ips

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self.pods)})"


class PodCounts:
    """Running counts of the pods one matcher selects: per node, and per domain of topology keys."""

    __slots__ = ("matcher", "by_node", "by_domain")

    def __init__(self, matcher: PodMatcher) -> None:
        self.matcher = matcher
        self.by_node: dict[str, int] = {}
        self.by_domain: dict[str, dict[str, int]] = {}


class TermGroup:
    """Existing pods holding one identical affinity term: how many sit in each topology domain."""

    __slots__ = ("kind", "term", "pods", "by_domain")

    def __init__(self, kind: str, term: AffinityTerm) -> None:
        self.kind = kind
        self.term = term
        self.pods = 0
        self.by_domain: dict[str, int] = {}


def _bump(counts: dict[str, int], key: str, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)


def _zone_key(node: NodeInfo) -> str:
    """utilnode.GetZoneKey: region and zone together name a failure domain."""
    region = node.labels.get(REGION_LABEL) or node.labels.get(_BETA_REGION) or ""
    return f"{region}:\x00:{node.zone}" if region or node.zone else ""


def _interleave_zones(nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
    """nodeTree.list(): one node from each zone in turn, so a partial scan still covers every zone."""
    zones: dict[str, list[NodeInfo]] = {}
    for node in nodes:
        zones.setdefault(_zone_key(node), []).append(node)
    order: list[NodeInfo] = []
    columns = list(zones.values())
    for i in range(max((len(c) for c in columns), default=0)):
        order.extend(c[i] for c in columns if i < len(c))
    return order


class Snapshot:
    """Nodes with their pods, plus indexes for topology and affinity questions."""

    def __init__(self, nodes: list[NodeInfo], *, namespaces: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.nodes = list(nodes)
        self.order = _interleave_zones(self.nodes)  # the order filters walk nodes in
        self.next_start_index = 0  # where the next partial scan starts (upstream's nextStartNodeIndex)
        self.prefer_no_schedule_nodes = sum(1 for n in self.nodes if n.prefer_taints)
        self._by_name = {n.name: n for n in self.nodes}
        self._namespace_labels = {name: dict(labels) for name, labels in (namespaces or {}).items()}
        self._pods: dict[str, PodInfo] = {}
        self._by_namespace: dict[str, dict[str, PodInfo]] = {}
        self._counts: dict[tuple[Any, ...], PodCounts] = {}
        self._groups: dict[str, dict[tuple[Any, ...], TermGroup]] = {
            k: {} for k in (REQUIRED_AFFINITY, REQUIRED_ANTI_AFFINITY, PREFERRED_AFFINITY, PREFERRED_ANTI_AFFINITY)}
        self._domains: dict[str, dict[str, int]] = {}
        self._labelled: dict[str, int] = {}
        for node in self.nodes:
            for pod in node.pods:
                pod.node_name = node.name
                self._index(pod, node, 1)

    @classmethod
    def from_objects(cls, nodes: list[dict[str, Any]], pods: list[dict[str, Any]], *,
                     namespaces: list[dict[str, Any]] | None = None) -> Snapshot:
        """A snapshot of Node and Pod objects as the API returns them (Namespaces for namespaceSelectors)."""
        infos = [NodeInfo(n) for n in nodes]
        by_name = {n.name: n for n in infos}
        for pod in pods:
            node = by_name.get((pod.get("spec") or {}).get("nodeName") or "")
            if node is not None and (pod.get("status") or {}).get("phase") not in FINISHED_PHASES:
                node.add_pod(PodInfo(pod))
        labels = {(ns.get("metadata") or {}).get("name") or "": (ns.get("metadata") or {}).get("labels") or {}
                  for ns in namespaces or ()}
        return cls(infos, namespaces=labels)

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self.nodes)

    def pod(self, namespace: str, name: str) -> PodInfo | None:
        return self._pods.get(f"{namespace}/{name}")

    def add_pod(self, pod: Mapping[str, Any] | PodInfo, node_name: str) -> PodInfo:
        """Account `pod` on `node_name` (the scheduler cache's AssumePod); replaces an earlier copy."""
        info = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        node = self._by_name[node_name]
        if info.key in self._pods:
            self.remove_pod(info.namespace, info.name)
        info.node_name = node_name
        info.cycle = {}
        node.add_pod(info)
        self._index(info, node, 1)
        return info

    def remove_pod(self, namespace: str, name: str) -> PodInfo | None:
        """Stop accounting a pod (deleted, finished, or a binding that failed: ForgetPod)."""
        info = self._pods.get(f"{namespace}/{name}")
        node = self._by_name.get(info.node_name) if info else None
        if info is None or node is None:
            return None
        node.remove_pod(info)
        self._index(info, node, -1)
        return info

    def _index(self, pod: PodInfo, node: NodeInfo, delta: int) -> None:
        if delta > 0:
            self._pods[pod.key] = pod
            self._by_namespace.setdefault(pod.namespace, {})[pod.key] = pod
        else:
            self._pods.pop(pod.key, None)
            self._by_namespace.get(pod.namespace, {}).pop(pod.key, None)
        for counts in self._counts.values():
            if counts.matcher.matches(pod.namespace, pod.labels, pod.terminating, self.namespace_labels):
                self._count(counts, node, delta)
        terms = pod.terms
        if terms is not NO_TERMS:
            for kind, group in ((REQUIRED_AFFINITY, terms.required_affinity),
                                (REQUIRED_ANTI_AFFINITY, terms.required_anti_affinity),
                                (PREFERRED_AFFINITY, terms.preferred_affinity),
                                (PREFERRED_ANTI_AFFINITY, terms.preferred_anti_affinity)):
                for term in group:
                    self._group(kind, term, node, delta)

    def _group(self, kind: str, term: AffinityTerm, node: NodeInfo, delta: int) -> None:
        groups = self._groups[kind]
        group = groups.get(term.key)
        if group is None:
            group = groups[term.key] = TermGroup(kind, term)
        group.pods += delta
        value = node.labels.get(term.topology_key)
        if value is not None:
            _bump(group.by_domain, value, delta)
        if group.pods <= 0:
            del groups[term.key]

    @staticmethod
    def _count(counts: PodCounts, node: NodeInfo, delta: int) -> None:
        _bump(counts.by_node, node.name, delta)
        for key, by_value in counts.by_domain.items():
            value = node.labels.get(key)
            if value is not None:
                _bump(by_value, value, delta)

    # ---- questions plugins ask ------------------------------------------------------------------

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """A namespace's labels; unknown namespaces carry only kubernetes.io/metadata.name, as all do."""
        labels = self._namespace_labels.get(namespace)
        if labels is None:
            labels = self._namespace_labels[namespace] = {NAMESPACE_NAME_LABEL: namespace}
        return labels

    def pod_counts(self, matcher: PodMatcher) -> PodCounts:
        """The running counts for `matcher`, built on first use from the pods it could select."""
        counts = self._counts.get(matcher.key)
        if counts is None:
            counts = self._counts[matcher.key] = PodCounts(matcher)
            if matcher.any_namespace_possible:
                candidates: Iterable[PodInfo] = self._pods.values()
            else:
                candidates = (p for ns in matcher.namespaces for p in self._by_namespace.get(ns, {}).values())
            for pod in candidates:
                if matcher.matches(pod.namespace, pod.labels, pod.terminating, self.namespace_labels):
                    _bump(counts.by_node, pod.node_name, 1)
        return counts

    def count_by_node(self, matcher: PodMatcher) -> Mapping[str, int]:
        """Node name -> pods on it that `matcher` selects (absent: none)."""
        return self.pod_counts(matcher).by_node

    def count_by_domain(self, matcher: PodMatcher, topology_key: str) -> Mapping[str, int]:
        """Topology value -> pods `matcher` selects on nodes labelled with it (absent: none)."""
        counts = self.pod_counts(matcher)
        by_value = counts.by_domain.get(topology_key)
        if by_value is None:
            by_value = counts.by_domain[topology_key] = {}
            for name, count in counts.by_node.items():
                value = self._by_name[name].labels.get(topology_key)
                if value is not None:
                    by_value[value] = by_value.get(value, 0) + count
        return by_value

    def domains(self, topology_key: str) -> Mapping[str, int]:
        """Topology value -> number of nodes labelled with it."""
        by_value = self._domains.get(topology_key)
        if by_value is None:
            by_value = self._domains[topology_key] = {}
            for node in self.nodes:
                value = node.labels.get(topology_key)
                if value is not None:
                    by_value[value] = by_value.get(value, 0) + 1
        return by_value

    def nodes_with_label(self, topology_key: str) -> int:
        """How many nodes carry the label at all."""
        count = self._labelled.get(topology_key)
        if count is None:
            count = self._labelled[topology_key] = sum(self.domains(topology_key).values())
        return count

    def term_groups(self, kind: str) -> Iterable[TermGroup]:
        """Existing pods' affinity terms of one kind, identical terms grouped."""
        return self._groups[kind].values()

    def pods_in(self, matcher: PodMatcher) -> Iterable[PodInfo]:
        """Every accounted pod `matcher` could select by namespace (for the rare multi-term question)."""
        if matcher.any_namespace_possible:
            return list(self._pods.values())
        return [p for ns in matcher.namespaces for p in self._by_namespace.get(ns, {}).values()]
