"""core/v1 Service defaults and validation (re-exported by core.py, where the registry finds them).

Services are the largest of the small core kinds: type-dependent defaults (traffic policies, IP
family fields, load balancer node ports) and port rules (names, protocols, node port range), as in
SetDefaults_Service and ValidateService. Allocating cluster IPs and node ports is not done here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f
from chalicelib.types.meta import validate_dns1123_label, validate_dns1123_subdomain, validate_labels
from chalicelib.types.pod_container import PROTOCOLS

Obj = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
NODE_PORT_RANGE = (30000, 32767)


def _spec(obj: Obj) -> Obj | None:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else None


def _headless(spec: Obj) -> bool:
    return spec.get("clusterIP") == "None"


def default_service(obj: Obj) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    service_type = spec["type"]
    for port in f.list_or_empty(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, "") and isinstance(port.get("port"), int):
            port["targetPort"] = port["port"]
    externally = service_type in ("NodePort", "LoadBalancer") or (
        service_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and service_type in (
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if service_type == "ExternalName":
        return
    # The strategy keeps clusterIP and clusterIPs[0] in step; IP allocation itself is not done here.
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif isinstance(spec.get("clusterIPs"), list) and spec["clusterIPs"] and not spec.get("clusterIP"):
        spec["clusterIP"] = spec["clusterIPs"][0]
    if spec.get("ipFamilyPolicy") is None:
        selectorless_headless = _headless(spec) and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if selectorless_headless else "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


def validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    service_type = f.as_str(spec.get("type"), "spec.type", errs)
    ports = list(f.maps_in(spec.get("ports"), "spec.ports", errs))
    if not ports and not _headless(spec) and service_type != "ExternalName" and spec.get("ports") in (None, []):
        errs.append(f.required("spec.ports"))
    if service_type == "ExternalName":
        for name in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(name):
                errs.append(f.forbidden(f.child("spec", name), "may not be set for ExternalName services"))
        cname = f.as_str(spec.get("externalName"), "spec.externalName", errs)
        if cname == "" or cname == ".":
            errs.append(f.required("spec.externalName"))
        elif cname:
            errs.extend(validate_dns1123_subdomain(cname.removesuffix("."), "spec.externalName"))
    elif service_type in ("NodePort", "LoadBalancer") and _headless(spec):
        errs.append(f.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {service_type} services"))
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for _, path, port in ports:
        port_name = f.as_str(port.get("name"), f.child(path, "name"), errs)
        if port_name == "" and len(ports) > 1:
            errs.append(f.required(f.child(path, "name")))
        elif port_name:
            errs.extend(validate_dns1123_label(port_name, f.child(path, "name")))
            if port_name in names:
                errs.append(f.duplicate(f.child(path, "name"), port_name))
            names.add(port_name)
        number = f.as_int(port.get("port"), f.child(path, "port"), errs)
        errs.extend(f.invalid(f.child(path, "port"), number or 0, m) for m in f.is_valid_port_num(number or 0))
        protocol = f.as_str(port.get("protocol"), f.child(path, "protocol"), errs)
        if protocol and protocol not in PROTOCOLS:
            errs.append(f.not_supported(f.child(path, "protocol"), protocol, list(PROTOCOLS)))
        if port.get("targetPort") is not None:
            f.port_num_or_name(port["targetPort"], f.child(path, "targetPort"), errs)
        node_port = f.as_int(port.get("nodePort"), f.child(path, "nodePort"), errs)
        if node_port:
            if service_type == "ClusterIP":
                errs.append(f.forbidden(f.child(path, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
            elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.append(
                    f.invalid(
                        f.child(path, "nodePort"),
                        node_port,
                        "provided port is not in the valid range. The range of valid ports is "
                        f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    )
                )
            if (protocol, node_port) in seen_node_ports:
                errs.append(f.duplicate(f.child(path, "nodePort"), node_port))
            seen_node_ports.add((protocol, node_port))
        if (protocol, number) in seen_ports:
            errs.append(
                f.duplicate(
                    path,
                    f.GoStruct(Name="", Protocol=protocol, AppProtocol=None, Port=number, TargetPort=0, NodePort=0),
                )
            )
        seen_ports.add((protocol, number))
    errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    affinity = f.as_str(spec.get("sessionAffinity"), "spec.sessionAffinity", errs)
    if affinity and affinity not in SESSION_AFFINITIES:
        errs.append(f.not_supported("spec.sessionAffinity", affinity, list(SESSION_AFFINITIES)))
    if affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(f.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    if service_type is not None and service_type not in SERVICE_TYPES:
        errs.append(f.not_supported("spec.type", service_type, list(SERVICE_TYPES)))
    for name, allowed in (
        ("externalTrafficPolicy", TRAFFIC_POLICIES),
        ("internalTrafficPolicy", TRAFFIC_POLICIES),
        ("ipFamilyPolicy", IP_FAMILY_POLICIES),
    ):
        value = f.as_str(spec.get(name), f.child("spec", name), errs)
        if value and value not in allowed:
            errs.append(f.not_supported(f.child("spec", name), value, list(allowed)))
    _validate_ips(spec, errs)
    if old is not None:
        old_spec = f.dict_or_empty(old.get("spec"))
        old_ip, new_ip = old_spec.get("clusterIP"), spec.get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip and "ExternalName" not in (service_type, old_spec.get("type")):
            errs.append(f.invalid("spec.clusterIPs[0]", spec.get("clusterIPs") or [new_ip], "may not change once set"))
    return errs


def _validate_ips(spec: Obj, errs: list[Cause]) -> None:
    message = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    cluster_ip = f.as_str(spec.get("clusterIP"), "spec.clusterIP", errs)
    if cluster_ip and cluster_ip != "None" and not _valid_ip(cluster_ip):
        errs.append(f.invalid("spec.clusterIP", cluster_ip, message))
    for section in ("clusterIPs", "externalIPs"):
        for i, ip in enumerate(f.as_list(spec.get(section), f.child("spec", section), errs)):
            if not (section == "clusterIPs" and ip == "None") and not (isinstance(ip, str) and _valid_ip(ip)):
                errs.append(f.invalid(f.index(f.child("spec", section), i), ip, message))


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
