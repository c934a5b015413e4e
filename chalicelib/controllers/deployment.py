"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

It behaves as kube-controller-manager's deployment controller (pkg/controller/deployment), so
`kubectl rollout status|history|undo|restart|pause|resume` work unchanged: one ReplicaSet per pod
template, named `<deployment>-<pod-template-hash>` and owned by the Deployment; revisions in
annotations; RollingUpdate within maxSurge/maxUnavailable or Recreate; proportional scaling when the
size changes mid-rollout; old revisions pruned beyond revisionHistoryLimit; status and conditions
as `kubectl rollout status` reads them. The arithmetic lives in rollout.py and the status in
deployment_status.py; this module reads the objects, decides, and writes.

`sync` is level-triggered and idempotent (DESIGN.md invariant 4): it reads the Deployment and its
ReplicaSets afresh, converges, and writes only what differs, so a second run with nothing changed
writes nothing. A 409 from any write propagates as errors.Conflict; the caller re-runs sync.

Where Skiff differs from upstream, deliberately:
  * Upstream takes one step per sync (scale up, or else scale down) and relies on the ReplicaSet
    update event for the next; a sync here repeats those steps while they change ReplicaSets, so it
    ends where upstream's chain of events would (given no new pod status) and a repeated sync is a
    no-op. Each step sees exactly the state the next upstream sync would, so the surge (counted as
    below) and availability bounds hold at every write.
  * The maxSurge bound counts, for each ReplicaSet, the more of spec.replicas and status.replicas
    (upstream sums spec.replicas): a ReplicaSet just scaled down keeps its pods until the ReplicaSet
    controller has deleted them, so the new ReplicaSet grows only into room that exists. The passes
    of one sync therefore do not grow it into room an old ReplicaSet's scale-down made; that waits
    for the ReplicaSet controller, and a rollout takes more syncs than upstream's.
  * The revision annotation on the Deployment is written with an update of the object (Skiff's
    /status keeps metadata as stored), and the status with one update at the end rather than one
    per step, so a sync does not conflict with its own earlier writes.
  * After refreshing the new ReplicaSet's annotations the sync carries on (upstream returns and
    waits for the next event); a name collision is retried in the same sync after recording
    status.collisionCount (upstream returns an error and is requeued).
  * Old ReplicaSets are pruned when the status about to be written shows the rollout complete
    (upstream looks at the status it wrote last time, i.e. one sync later).
  * A Deployment being deleted gets its status only: no annotation or adoption writes.
  * The deprecated rollbackTo annotation (extensions/v1beta1) is not supported: apps/v1 kubectl
    undoes client-side.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from chalicelib import errors
from chalicelib.api.label_selector import format_label_selector
from chalicelib.controllers import deployment_status as ds
from chalicelib.controllers import events
from chalicelib.controllers import rollout as ro
from chalicelib.controllers.client import Client
from chalicelib.types.meta import selector_matches

Obj = dict[str, Any]
COMPONENT = "deployment-controller"
COLLISION_RETRIES = 5
MAX_PASSES = 10


def sync(client: Client, namespace: str, name: str, *, now: datetime | None = None) -> float | None:
    """Converge one Deployment one step; seconds after which to sync it again, or None."""
    d = client.get("deployments", namespace, name)
    if d is None:
        return None
    return _Sync(client, d, now or datetime.now(UTC)).run()


class _Sync:
    def __init__(self, client: Client, d: Obj, now: datetime) -> None:
        self.client = client
        self.d = d
        self.now = now
        self.ns = str(d["metadata"].get("namespace") or "")
        self.stored_status: Obj = copy.deepcopy(d.get("status") or {})
        self.working: Obj = copy.deepcopy(self.stored_status)  # upstream's in-memory d.Status
        self.observed: Obj = self.stored_status  # the status the previous pass ended with
        self.pending: Obj | None = None  # the status to write at the end

    # --- entry ---

    def run(self) -> float | None:
        deleting = bool(self.d["metadata"].get("deletionTimestamp"))
        rss = self._claim_replicasets(deleting)
        if deleting:
            new_rs = ro.find_new_rs(self.d, rss)
            olds = [rs for rs in rss if new_rs is None or ro.uid(rs) != ro.uid(new_rs)]
            self._sync_status(olds, new_rs)
            self._flush_status()
            return None
        self._check_paused_conditions()
        resync = None
        for _pass in range(MAX_PASSES):
            writes = self._replicaset_writes()
            resync = self._pass(rss)
            if self._replicaset_writes() == writes:
                break
            rss = self._claim_replicasets(False)
        self._flush_status()
        return resync

    def _replicaset_writes(self) -> int:
        return sum(a.resource == "replicasets" for a in self.client.actions)

    def _pass(self, rss: list[Obj]) -> float | None:
        """One sync as upstream does it. Passes repeat while they change ReplicaSets, so the sync ends at
        the controller's own fixed point and a second sync with nothing new has nothing to write."""
        new_rs, olds = self._new_and_old(rss, create=False)
        if self._spec().get("paused") or self._is_scaling_event(new_rs, olds):
            self._scale(new_rs, olds)
            if self._spec().get("paused"):
                self._cleanup(olds)
            self._sync_status(olds, new_rs)
            return ds.min_ready_resync(self.d, [*olds, new_rs])
        if self._spec().get("strategy", {}).get("type") == "Recreate":
            return self._rollout_recreate(rss, new_rs, olds)
        return self._rollout_rolling(rss, new_rs, olds)

    def _spec(self) -> Obj:
        return self.d.get("spec") or {}

    # --- ownership (ControllerRefManager.ClaimReplicaSets) ---

    def _owner_ref(self) -> Obj:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "name": ro.name(self.d), "uid": ro.uid(self.d),
                "controller": True, "blockOwnerDeletion": True}

    def _claim_replicasets(self, deleting: bool) -> list[Obj]:
        selector = self._spec().get("selector")
        mine = ro.uid(self.d)
        claimed = []
        for rs in self.client.list_objects("replicasets", self.ns):
            labels = (rs.get("metadata") or {}).get("labels")
            ref = ro.controller_ref(rs)
            matches = selector_matches(selector, labels)
            if ref is not None:
                if ref.get("uid") != mine:
                    continue
                if matches:
                    claimed.append(rs)
                elif not deleting:
                    self._patch_owner(rs, [{"$patch": "delete", "uid": mine}])
                continue
            if deleting or not matches or (rs.get("metadata") or {}).get("deletionTimestamp"):
                continue
            adopted = self._patch_owner(rs, [self._owner_ref()])
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    def _patch_owner(self, rs: Obj, refs: list[Obj]) -> Obj | None:
        try:
            return self.client.patch("replicasets", self.ns, ro.name(rs), {"metadata": {"ownerReferences": refs}},
                                     content_type="application/strategic-merge-patch+json")
        except errors.NotFound:
            return None

    # --- the new ReplicaSet and the revision (getAllReplicaSetsAndSyncRevision) ---

    def _new_and_old(self, rss: list[Obj], *, create: bool) -> tuple[Obj | None, list[Obj]]:
        existing = ro.find_new_rs(self.d, rss)
        olds = [rs for rs in rss if existing is None or ro.uid(rs) != ro.uid(existing)]
        new_revision = ro.max_revision(olds) + 1
        if existing is not None:
            return self._refresh_new_rs(existing, new_revision), olds
        if not create:
            return None, olds
        return self._create_new_rs(olds, new_revision), olds

    def _refresh_new_rs(self, rs: Obj, new_revision: int) -> Obj:
        updated = copy.deepcopy(rs)
        changed = ro.set_new_rs_annotations(self.d, updated, new_revision, exists=True)
        min_ready = self._spec().get("minReadySeconds") or 0
        if ((updated.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            updated["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            rs = self.client.update("replicasets", updated)
        self._set_deployment_revision(ro.notes_of(rs).get(ro.REVISION, ""))
        if ds.has_progress_deadline(self.d) and ds.get_condition(self.working, ds.PROGRESSING) is None:
            ds.set_condition(self.working, ds.new_condition(
                ds.PROGRESSING, "True", ds.FOUND_NEW_RS, f'Found new replica set "{ro.name(rs)}"', self.now))
        return rs

    def _new_rs_body(self, olds: list[Obj], new_revision: int, collision_count: int | None) -> Obj:
        spec = self._spec()
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = ro.compute_hash(spec.get("template") or {}, collision_count)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), ro.HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), ro.HASH_LABEL: pod_hash}
        rs_spec: Obj = {"replicas": 0, "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        rs: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": f"{ro.name(self.d)}-{pod_hash}", "namespace": self.ns,
                                "labels": dict(labels), "ownerReferences": [self._owner_ref()]},
                   "spec": rs_spec}
        rs_spec["replicas"] = ro.new_rs_new_replicas(self.d, [*olds, rs], rs)
        ro.set_new_rs_annotations(self.d, rs, new_revision, exists=False)
        return rs

    def _create_new_rs(self, olds: list[Obj], new_revision: int) -> Obj:
        for _attempt in range(COLLISION_RETRIES):
            body = self._new_rs_body(olds, new_revision, self.working.get("collisionCount"))
            rs_name, replicas = ro.name(body), ro.spec_replicas(body)
            try:
                created = self.client.create("replicasets", self.ns, body)
            except errors.AlreadyExists:
                found = self.client.get("replicasets", self.ns, rs_name)
                ref = ro.controller_ref(found) if found is not None else None
                if found is not None and ref is not None and ref.get("uid") == ro.uid(self.d) and \
                        ro.equal_ignore_hash((found.get("spec") or {}).get("template"), self._spec().get("template")):
                    self._set_deployment_revision(str(new_revision))
                    return found
                # A different template has this name: count the collision, which changes the hash.
                self.working["collisionCount"] = int(self.working.get("collisionCount") or 0) + 1
                self._write_status(self.working)
                continue
            except (errors.Conflict, errors.Forbidden, errors.TooManyRequests):
                raise
            except errors.APIError as exc:
                msg = f'Failed to create new replica set "{rs_name}": {exc.message}'
                if ds.has_progress_deadline(self.d):
                    ds.set_condition(self.working, ds.new_condition(ds.PROGRESSING, "False", ds.FAILED_RS_CREATE,
                                                                    msg, self.now))
                    self._write_status(self.working)
                events.record(self.client, self.d, reason=ds.FAILED_RS_CREATE, message=msg, component=COMPONENT,
                              type_="Warning")
                raise
            if replicas > 0:
                self._event(f"Scaled up replica set {rs_name} from 0 to {replicas}")
            self._set_deployment_revision(str(new_revision))
            if ds.has_progress_deadline(self.d):
                ds.set_condition(self.working, ds.new_condition(
                    ds.PROGRESSING, "True", ds.NEW_RS_CREATED, f'Created new replica set "{rs_name}"', self.now))
            return created
        raise errors.Conflict("replicasets", f"{ro.name(self.d)}-*", "apps")

    def _set_deployment_revision(self, revision: str) -> None:
        if ro.notes_of(self.d).get(ro.REVISION) == revision:
            return
        updated = copy.deepcopy(self.d)
        ro.md(updated).setdefault("annotations", {})[ro.REVISION] = revision
        self.d = self.client.update("deployments", updated)

    # --- scaling ---

    def _event(self, message: str) -> None:
        events.record(self.client, self.d, reason="ScalingReplicaSet", message=message, component=COMPONENT)

    def _scale_rs(self, rs: Obj, new_scale: int, *, record_only_if_resized: bool = True) -> Obj:
        """Set a ReplicaSet's size and replica annotations (scaleReplicaSet); the stored result."""
        old_scale = ro.spec_replicas(rs)
        resize = old_scale != new_scale
        if record_only_if_resized and not resize:
            return rs
        desired = ro.spec_replicas(self.d)
        maximum = desired + ro.max_surge(self.d)
        if not resize and not ro.replicas_annotations_need_update(rs, desired, maximum):
            return rs
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = new_scale
        ro.set_replicas_annotations(updated, desired, maximum)
        stored = self.client.update("replicasets", updated)
        if resize:
            direction = "up" if old_scale < new_scale else "down"
            self._event(f"Scaled {direction} replica set {ro.name(stored)} from {old_scale} to {new_scale}")
        rs.clear()
        rs.update(stored)
        return rs

    def _is_scaling_event(self, new_rs: Obj | None, olds: list[Obj]) -> bool:
        replicas = ro.spec_replicas(self.d)
        for rs in ro.active([*olds, new_rs]):
            desired = ro.desired_replicas_annotation(rs)
            if desired is not None and desired != replicas:
                return True
        return False

    def _scale(self, new_rs: Obj | None, olds: list[Obj]) -> None:
        """Scale for a size change (upstream's scale()): proportionally when a rollout is under way."""
        replicas = ro.spec_replicas(self.d)
        only = ro.find_active_or_latest(new_rs, olds)
        if only is not None:
            if ro.spec_replicas(only) != replicas:
                self._scale_rs(only, replicas)
            return
        if ro.is_saturated(self.d, new_rs):
            for rs in ro.active(olds):
                self._scale_rs(rs, 0)
            return
        if not ro.is_rolling(self.d):
            return
        running = ro.active([*olds, new_rs])
        allowed = replicas + ro.max_surge(self.d) if replicas > 0 else 0
        to_add = allowed - sum(ro.spec_replicas(rs) for rs in running)
        if to_add > 0:
            running = ro.sort_by_size_newer(running)
        elif to_add < 0:
            running = ro.sort_by_size_older(running)
        added, sizes = 0, []
        for rs in running:
            share = ro.rs_proportion(rs, self.d, to_add, added) if to_add else 0
            sizes.append(ro.spec_replicas(rs) + share)
            added += share
        if running and to_add:
            sizes[0] = max(0, sizes[0] + to_add - added)  # leftovers go to the largest
        for rs, size in zip(running, sizes, strict=True):
            self._scale_rs(rs, size, record_only_if_resized=False)

    # --- RollingUpdate (rolling.go) ---

    def _rollout_rolling(self, rss: list[Obj], new_rs: Obj | None, olds: list[Obj]) -> float | None:
        if new_rs is None:
            new_rs, olds = self._new_and_old(rss, create=True)
            assert new_rs is not None
        all_rss = [*olds, new_rs]
        if self._reconcile_new(all_rss, new_rs) or self._reconcile_old(all_rss, ro.active(olds), new_rs):
            return self._sync_rollout_status(olds, new_rs)
        return self._sync_rollout_status(olds, new_rs, cleanup=True)

    def _reconcile_new(self, all_rss: list[Obj], new_rs: Obj) -> bool:
        replicas, current = ro.spec_replicas(self.d), ro.spec_replicas(new_rs)
        if current == replicas:
            return False
        target = replicas if current > replicas else ro.new_rs_new_replicas(self.d, all_rss, new_rs)
        self._scale_rs(new_rs, target)
        return target != current

    def _reconcile_old(self, all_rss: list[Obj], olds: list[Obj], new_rs: Obj) -> bool:
        if sum(ro.spec_replicas(rs) for rs in olds) == 0:
            return False
        all_pods = sum(ro.spec_replicas(rs) for rs in all_rss)
        min_available = ro.spec_replicas(self.d) - ro.max_unavailable(self.d)
        new_unavailable = ro.spec_replicas(new_rs) - ro.status_int(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        if any(ro.status_int(rs, "availableReplicas") > ro.spec_replicas(rs) for rs in olds):
            # A ReplicaSet reports more available pods than it wants: it was just scaled down and its
            # status is stale. Upstream fails this sync ("invalid request to scale down"); its
            # controller's status update brings the next one.
            return False
        # Unhealthy old replicas first: removing them costs no availability.
        cleaned = 0
        for rs in ro.sort_by_creation(olds):
            if cleaned >= max_scaled_down:
                break
            size, healthy = ro.spec_replicas(rs), ro.status_int(rs, "availableReplicas")
            if size == 0 or size == healthy:
                continue
            count = min(max_scaled_down - cleaned, size - healthy)
            self._scale_rs(rs, size - count)
            cleaned += count
        return cleaned + self._scale_down_old_for_rolling([*olds, new_rs], olds) > 0

    def _scale_down_old_for_rolling(self, all_rss: list[Obj], olds: list[Obj]) -> int:
        min_available = ro.spec_replicas(self.d) - ro.max_unavailable(self.d)
        available = sum(ro.status_int(rs, "availableReplicas") for rs in all_rss)
        if available <= min_available:
            return 0
        budget, done = available - min_available, 0
        for rs in ro.sort_by_creation(olds):
            if done >= budget:
                break
            size = ro.spec_replicas(rs)
            if size == 0:
                continue
            count = min(size, budget - done)
            self._scale_rs(rs, size - count)
            done += count
        return done

    # --- Recreate (recreate.go) ---

    def _rollout_recreate(self, rss: list[Obj], new_rs: Obj | None, olds: list[Obj]) -> float | None:
        scaled_down = False
        for rs in ro.active(olds):
            self._scale_rs(rs, 0)
            scaled_down = True
        if scaled_down or self._old_pods_running(new_rs, olds):
            return self._sync_rollout_status(olds, new_rs)
        if new_rs is None:
            new_rs, olds = self._new_and_old(rss, create=True)
            assert new_rs is not None
        self._scale_rs(new_rs, ro.spec_replicas(self.d))
        return self._sync_rollout_status(olds, new_rs, cleanup=True)

    def _old_pods_running(self, new_rs: Obj | None, olds: list[Obj]) -> bool:
        if sum(ro.status_int(rs, "replicas") for rs in olds) > 0:
            return True
        old_uids = {ro.uid(rs) for rs in olds}
        selector = format_label_selector(self._spec().get("selector"))
        for pod in self.client.list_objects("pods", self.ns, label_selector=selector):
            ref = ro.controller_ref(pod)
            if ref is None or ref.get("uid") not in old_uids:
                continue
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
        return False

    # --- history (cleanupDeployment) ---

    def _cleanup(self, olds: list[Obj]) -> None:
        limit = self._spec().get("revisionHistoryLimit")
        if limit is None or limit == ro.MAX_INT32:
            return
        alive = [rs for rs in olds if not rs["metadata"].get("deletionTimestamp")]
        excess = len(alive) - int(limit)
        for rs in ro.sort_by_revision(alive)[:max(0, excess)]:
            if ro.status_int(rs, "replicas") or ro.spec_replicas(rs) or \
                    int(rs["metadata"].get("generation") or 0) > ro.status_int(rs, "observedGeneration"):
                continue
            self.client.delete("replicasets", self.ns, ro.name(rs))

    # --- status (sync.go syncDeploymentStatus, progress.go syncRolloutStatus) ---

    def _check_paused_conditions(self) -> None:
        ds.paused_condition(self.d, self.working, self.now)

    def _sync_status(self, olds: list[Obj], new_rs: Obj | None) -> None:
        all_rss = [*olds, *([new_rs] if new_rs is not None else [])]
        status = ds.with_availability(ds.calculate_status(all_rss, new_rs, self.d, self.working), self.d, self.now)
        self._set_status(status)

    def _sync_rollout_status(self, olds: list[Obj], new_rs: Obj | None, *, cleanup: bool = False) -> float | None:
        all_rss = [*olds, *([new_rs] if new_rs is not None else [])]
        status = ds.rollout_status(self.d, all_rss, new_rs, working=self.working, observed=self.observed,
                                   now=self.now)
        if cleanup and ds.deployment_complete(self.d, status):
            # Upstream looks at the status it last wrote; this one is what it is about to write.
            self._cleanup(olds)
        self._set_status(status)
        return ds.resync_after(self.d, status, all_rss, self.now)

    def _set_status(self, status: Obj) -> None:
        """What this pass would write; the next pass starts from it, as upstream's next sync would."""
        self.pending = status
        self.observed = status
        self.working = copy.deepcopy(status)

    def _flush_status(self) -> None:
        if self.pending is not None:
            self._write_status(self.pending)

    def _write_status(self, status: Obj) -> None:
        if ds.compact(status) == ds.compact(self.stored_status):
            return
        body = copy.deepcopy(self.d)
        body["status"] = ds.compact(status)
        self.d = self.client.update_status("deployments", body)
        self.stored_status = copy.deepcopy(self.d.get("status") or {})
