"""Discovery: /version, /api, /apis and the per-group-version resource lists kubectl reads first.

Served in the legacy (non-aggregated) JSON form, which every kubectl and client accepts.
"""

from __future__ import annotations

from typing import Any

from chalicelib.types import registry

Obj = dict[str, Any]
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-skiff.0.1.0", "gitCommit": "",
           "gitTreeState": "clean", "buildDate": "2026-11-29T00:00:00Z", "goVersion": "python3",
           "compiler": "skiff", "platform": "aws/lambda"}

_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def version() -> Obj:
    return dict(VERSION)


def core_versions() -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def _group(group: str) -> Obj:
    versions = [{"groupVersion": f"{group}/{v}", "version": v}
                for g, v in registry.group_versions() if g == group]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def groups() -> Obj:
    names: list[str] = []
    for g, _ in registry.group_versions():
        if g and g not in names:
            names.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in names]}


def group(name: str) -> Obj | None:
    if not any(g == name for g, _ in registry.group_versions()) or not name:
        return None
    return _group(name)


def resource_list(group: str, version: str) -> Obj | None:
    if not registry.group_known(group, version):
        return None
    out: list[Obj] = []
    for r in registry.resources_in(group, version):
        entry: Obj = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                      "kind": r.kind, "verbs": _VERBS}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in sorted(r.subresources):
            sub_entry: Obj = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": ["get", "patch", "update"]}
            if sub == "scale":
                sub_entry.update(kind="Scale", group="autoscaling", version="v1")
            elif sub == "binding":
                sub_entry.update(kind="Binding", verbs=["create"])
            elif sub == "finalize":
                sub_entry.update(verbs=["update"])
            out.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}
