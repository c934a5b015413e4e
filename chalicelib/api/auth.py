"""Authentication (bearer tokens) and authorization (admin, and node with NodeRestriction).

Tokens are random strings given once to their holder; the store keeps only their SHA-256, and no
token is ever logged. A node's token is bound to its node name and may touch only its own Node and
Lease, the status of pods bound to it, the deletion of those pods once they stopped, and Events
(invariant 6); it may read what a kubelet reads.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import errors
from chalicelib.api.paths import Target
from chalicelib.store.models import TokenRecord

ROLES = ("admin", "node", "bootstrap")  # bootstrap: may only exchange itself for a node credential
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_READABLE = frozenset({"core/pods", "core/nodes", "core/namespaces", "core/services",
                           "core/configmaps", "core/events", "coordination.k8s.io/leases"})
_CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, Identity | None]] = {}


@dataclass(frozen=True)
class Identity:
    role: str
    node: str | None = None

    @property
    def user(self) -> str:
        if self.role == "node":
            return f"system:node:{self.node}"
        return "system:bootstrap:skiff" if self.role == "bootstrap" else "skiff:admin"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(role: str, *, node: str | None = None, description: str = "") -> str:
    """Create a token for `role` and return it; only its hash is stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "node" and not node:
        raise ValueError("a node token needs the node's name")
    token = f"skiff.{secrets.token_urlsafe(32)}"
    TokenRecord(_hash(token), role=role, node=node, description=description or None,
                created=datetime.now(UTC).isoformat()).save()
    return token


def revoke_token(token: str) -> None:
    TokenRecord(_hash(token)).delete()
    _cache.pop(_hash(token), None)


def authenticate(authorization: str | None) -> Identity:
    """The caller behind an `Authorization: Bearer <token>` header, or 401."""
    if not authorization:
        raise errors.Unauthorized("Unauthorized: no bearer token; set a token in your kubeconfig")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("Unauthorized: only bearer tokens are accepted")
    digest = _hash(token.strip())
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached and now - cached[0] < _CACHE_SECONDS:
        ident = cached[1]
    else:
        try:
            rec = TokenRecord.get(digest)
            ident = Identity(role=rec.role, node=rec.node)
        except DoesNotExist:
            ident = None
        _cache[digest] = (now, ident)
    if ident is None:
        raise errors.Unauthorized("Unauthorized: the bearer token is not valid")
    return ident


def authorize(ident: Identity, verb: str, target: Target, existing: dict[str, Any] | None = None) -> None:
    """Raise 403 unless `ident` may do `verb` on `target` (and `existing`, the stored object)."""
    if ident.role == "admin":
        return
    if ident.role == "node":
        reason = _node_denial(ident, verb, target, existing)
    else:
        reason = "a bootstrap token may only request a node credential (POST /apis/skiff.io/v1/nodecredentialrequests)"
    if reason:
        res = target.resource
        scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
        what = f"{res.plural}/{target.subresource}" if target.subresource else res.plural
        raise errors.Forbidden(
            f'{res.plural} "{target.name or ""}" is forbidden: User "{ident.user}" cannot {verb} resource '
            f'"{what}" in API group "{res.group}" {scope}: {reason}',
            resource=res.plural, group=res.group, name=target.name or "")


def _node_denial(ident: Identity, verb: str, target: Target, existing: dict[str, Any] | None) -> str:
    res = target.resource
    me = ident.node
    if verb in ("get", "list", "watch"):
        return "" if res.key in NODE_READABLE else "nodes may not read this resource"
    if res.key == "core/nodes":
        if verb in ("create", "update", "patch") and target.name == me:
            return ""
        return f"node '{me}' cannot modify node '{target.name}'"
    if res.key == "coordination.k8s.io/leases":
        if target.namespace == NODE_LEASE_NAMESPACE and target.name == me:
            return ""
        return f"node '{me}' can only access its own lease in namespace {NODE_LEASE_NAMESPACE}"
    if res.key == "core/events":
        return "" if verb in ("create", "update", "patch") else "nodes may only create events"
    if res.key == "core/pods":
        bound = ((existing or {}).get("spec") or {}).get("nodeName")
        if bound != me:
            return f"node '{me}' can only modify pods bound to it"
        if target.subresource == "status" and verb in ("update", "patch"):
            return ""
        if target.subresource is None and verb == "delete":
            return ""
        return "nodes may only update the status of their pods and delete them"
    return "nodes may not modify this resource"
