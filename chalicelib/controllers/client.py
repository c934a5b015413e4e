"""The controllers' API client: the API's own verbs, in-process, as the system identity.

Controllers write through the same admission, validation and change log as any client, so what
they do is exactly what `kubectl` would see. Every write is recorded in `actions`, which the tests
read to assert what a sync did (in the manner of sample-controller's fake clientset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib import errors
from chalicelib.api import collections, subresources, verbs
from chalicelib.api.auth import Identity
from chalicelib.api.http import Request, Response
from chalicelib.api.paths import Target
from chalicelib.types import registry
from chalicelib.types.registry import ResourceInfo

Obj = dict[str, Any]
SYSTEM = Identity(role="admin")


@dataclass(frozen=True)
class Action:
    verb: str  # create, update, update-status, patch, delete
    resource: str  # plural, e.g. "pods"
    namespace: str | None
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.verb} {self.resource} {where}{self.name}"


def resource(plural: str) -> ResourceInfo:
    for r in registry.RESOURCES:
        if r.plural == plural:
            return r
    raise KeyError(plural)


@dataclass
class Client:
    actions: list[Action] = field(default_factory=list)

    def _target(self, plural: str, namespace: str | None, name: str | None = None,
                sub: str | None = None) -> Target:
        res = resource(plural)
        return Target(res, namespace if res.namespaced else None, name, sub)

    @staticmethod
    def _req(method: str, body: Any = None, query: dict[str, str] | None = None,
             content_type: str = "application/json") -> Request:
        return Request(method=method, path="", query={k: [v] for k, v in (query or {}).items()},
                       headers={"content-type": content_type},
                       body=b"" if body is None else json.dumps(body).encode())

    @staticmethod
    def _body(resp: Response) -> Obj:
        assert isinstance(resp.body, dict)
        return resp.body

    def get(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return self._body(verbs.get(self._req("GET"), self._target(plural, namespace, name), SYSTEM))
        except errors.NotFound:
            return None

    def list_objects(self, plural: str, namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "") -> list[Obj]:
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        body = self._body(collections.list_objects(self._req("GET", query=query),
                                                   self._target(plural, namespace), SYSTEM))
        res = resource(plural)
        return [{"apiVersion": res.api_version, "kind": res.kind, **item} for item in body["items"]]

    def create(self, plural: str, namespace: str | None, obj: Obj) -> Obj:
        created = self._body(verbs.create(self._req("POST", obj), self._target(plural, namespace), SYSTEM))
        self.actions.append(Action("create", plural, namespace, created["metadata"]["name"]))
        return created

    def update(self, plural: str, obj: Obj) -> Obj:
        md = obj["metadata"]
        out = self._body(verbs.update(self._req("PUT", obj), self._target(plural, md.get("namespace"), md["name"]),
                                      SYSTEM))
        if out["metadata"].get("resourceVersion") != md.get("resourceVersion"):
            self.actions.append(Action("update", plural, md.get("namespace"), md["name"]))
        return out

    def update_status(self, plural: str, obj: Obj) -> Obj:
        md = obj["metadata"]
        target = self._target(plural, md.get("namespace"), md["name"], "status")
        out = self._body(verbs.update(self._req("PUT", obj), target, SYSTEM))
        if out["metadata"].get("resourceVersion") != md.get("resourceVersion"):
            self.actions.append(Action("update-status", plural, md.get("namespace"), md["name"]))
        return out

    def patch(self, plural: str, namespace: str | None, name: str, patch: Any, *,
              content_type: str = "application/merge-patch+json", sub: str | None = None) -> Obj:
        target = self._target(plural, namespace, name, sub)
        before = self.get(plural, namespace, name)
        out = self._body(verbs.patch(self._req("PATCH", patch, content_type=content_type), target, SYSTEM))
        if before is None or out["metadata"].get("resourceVersion") != before["metadata"].get("resourceVersion"):
            self.actions.append(Action("patch" if sub is None else f"patch-{sub}", plural, namespace, name))
        return out

    def delete(self, plural: str, namespace: str | None, name: str, *, propagation: str | None = None,
               grace_seconds: int | None = None, uid: str | None = None) -> Obj | None:
        """Delete (or mark for deletion); None when it was already gone."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            resp = verbs.delete(self._req("DELETE", options), self._target(plural, namespace, name), SYSTEM)
        except errors.NotFound:
            return None
        self.actions.append(Action("delete", plural, namespace, name))
        return self._body(resp)

    def finalize_namespace(self, namespace_obj: Obj) -> Obj:
        name = namespace_obj["metadata"]["name"]
        out = self._body(verbs.update(self._req("PUT", namespace_obj),
                                      self._target("namespaces", None, name, "finalize"), SYSTEM))
        self.actions.append(Action("finalize", "namespaces", None, name))
        return out

    def bind(self, namespace: str, name: str, node: str) -> None:
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        subresources.bind(self._req("POST", body), self._target("pods", namespace, name, "binding"), SYSTEM)
        self.actions.append(Action("bind", "pods", namespace, name))

    def action_strings(self) -> list[str]:
        return [str(a) for a in self.actions]
