"""The whole pipeline on Nova: plan_path / apply_plan create, resize, replace and delete
real Nova servers, a second plan is empty, and Nova's refusals fail only their branch of the DAG."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.clock import Clock
from reconciler.core.model import TAG_KEY, Action
from reconciler.core.retry import RetryPolicy
from reconciler.run.apply import ApplyReport, apply_plan
from reconciler.run.audit import new_run
from reconciler.run.executor import ChangeStatus
from reconciler.run.planning import plan_path
from reconciler.run.workspace import Workspace
from tests.openstack.helpers import IMAGE_ID
from tests.openstack.novacloud import NovaCloud, Project

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DEPLOYMENT = "shop"


def _provider(project: Project, nova: NovaCloud) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: nova
spec:
  type: openstack
  cloud: {project.cloud_name}
  network: {nova.network_id}
  poll_interval: 0.1
  wait_timeout: 60
  max_parallel: 4
"""


def _template(name: str, *, flavor: str = "m1.tiny", image: str = IMAGE_ID, disk_gb: int = 1) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: {name}
spec:
  image:
    openstack: {image}
  size:
    cpus: 1
    memory_mb: 512
    disk_gb: {disk_gb}
  flavor:
    openstack: {flavor}
  scripts:
    boot: |
      #!/bin/sh
      echo {name} > /etc/role
  tags:
    role: {name}
"""


def _cluster(members: dict[str, str]) -> str:
    body = "".join(f"    {name}:\n{spec}" for name, spec in members.items())
    return f"""\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: shop
spec:
  provider: nova
  members:
{body}"""


def _write(folder: Path, *docs: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for index, doc in enumerate(docs):
        (folder / f"{index}.yaml").write_text(doc)
    return folder


def _run(folder: Path, state: Path) -> tuple[ApplyReport, Workspace]:
    ws = Workspace(state_dir=state, clock=Clock(fixed=NOW), retry=RetryPolicy(sleep=lambda _: None))
    try:
        plan = plan_path(folder, ws, deployment=DEPLOYMENT)
        return apply_plan(plan, ws, new_run("tester", None)), ws
    finally:
        ws.close()


def _plan(folder: Path, state: Path) -> tuple[list[tuple[str, Action]], Workspace]:
    ws = Workspace(state_dir=state, clock=Clock(fixed=NOW))
    try:
        plan = plan_path(folder, ws, deployment=DEPLOYMENT)
        return [(c.key, c.action) for c in plan.changes], ws
    finally:
        ws.close()


def _ours(project: Project) -> dict[str, dict[str, object]]:
    return {s["metadata"][TAG_KEY]: s for s in project.servers() if TAG_KEY in s["metadata"]}


def test_create_noop_resize_replace_delete_through_the_engine(
    nova: NovaCloud, project: Project, tmp_path: Path
) -> None:
    folder, state = tmp_path / DEPLOYMENT, tmp_path / "state"
    members = {"db": "      template: db\n      count: 1\n",
               "web": "      template: web\n      count: 2\n      depends_on: [db]\n"}
    _write(folder, _provider(project, nova), _template("db"), _template("web"), _cluster(members))

    report, _ = _run(folder, state)
    assert report.ok and report.count(ChangeStatus.SUCCEEDED) == 3
    first = _ours(project)
    assert sorted(first) == ["shop/db/0", "shop/web/0", "shop/web/1"]
    assert {s["status"] for s in first.values()} == {"ACTIVE"}
    assert sorted(s["name"] for s in first.values()) == ["shop-db-0", "shop-web-0", "shop-web-1"]

    changes, ws = _plan(folder, state)
    assert changes == []  # converged: a second plan is empty
    assert ws.calls["servers.list"] == 1 and sum(ws.calls.values()) == 1  # observing cost one call

    _write(folder, _provider(project, nova), _template("db"), _template("web", flavor="m1.small"),
           _cluster(members))
    assert sorted(_plan(folder, state)[0]) == [("shop/web/0", Action.UPDATE), ("shop/web/1", Action.UPDATE)]
    report, _ = _run(folder, state)
    assert report.ok
    resized = _ours(project)
    for key in ("shop/web/0", "shop/web/1"):
        assert resized[key]["id"] == first[key]["id"]  # in place
        assert resized[key]["flavor"]["original_name"] == "m1.small"  # type: ignore[index]
        assert resized[key]["status"] == "ACTIVE"
    assert _plan(folder, state)[0] == []

    _write(folder, _provider(project, nova), _template("db", image="fakeimage7"),
           _template("web", flavor="m1.small"), _cluster(members))
    assert _plan(folder, state)[0] == [("shop/db/0", Action.REPLACE)]
    report, _ = _run(folder, state)
    assert report.ok
    replaced = _ours(project)
    assert replaced["shop/db/0"]["id"] != first["shop/db/0"]["id"]
    assert replaced["shop/db/0"]["name"] == "shop-db-0-g1"
    assert len(replaced) == 3 and _plan(folder, state)[0] == []

    _write(folder, _provider(project, nova), _template("db", image="fakeimage7"),
           _cluster({"db": members["db"]}))
    assert sorted(_plan(folder, state)[0]) == [("shop/web/0", Action.DELETE), ("shop/web/1", Action.DELETE)]
    report, _ = _run(folder, state)
    assert report.ok
    assert sorted(_ours(project)) == ["shop/db/0"]
    assert _plan(folder, state)[0] == []


def _failing_branch(folder: Path, state: Path) -> dict[str, tuple[ChangeStatus, bool, str]]:
    report, _ = _run(folder, state)
    return {r.change.key: (r.status, r.permanent, r.message) for r in report.results}


def test_quota_refusal_fails_its_branch_and_skips_dependents(
    nova: NovaCloud, project: Project, tmp_path: Path
) -> None:
    project.set_quota(instances=0)
    members = {"db": "      template: db\n      count: 1\n",
               "app": "      template: app\n      count: 1\n      depends_on: [db]\n"}
    folder = _write(tmp_path / DEPLOYMENT, _provider(project, nova), _template("db"), _template("app"),
                    _cluster(members))

    results = _failing_branch(folder, tmp_path / "state")

    status, permanent, message = results["shop/db/0"]
    assert (status, permanent) == (ChangeStatus.FAILED, True)
    assert "Quota exceeded for instances" in message
    assert results["shop/app/0"][0] is ChangeStatus.SKIPPED
    assert _ours(project) == {}


def test_no_valid_host_fails_its_branch_and_the_rest_goes_on(
    nova: NovaCloud, project: Project, tmp_path: Path, huge_flavor: str
) -> None:
    members = {"db": "      template: db\n      count: 1\n",
               "app": "      template: app\n      count: 1\n      depends_on: [db]\n",
               "cache": "      template: cache\n      count: 1\n"}
    folder = _write(tmp_path / DEPLOYMENT, _provider(project, nova), _template("db", flavor=huge_flavor),
                    _template("app"), _template("cache"), _cluster(members))

    results = _failing_branch(folder, tmp_path / "state")

    status, permanent, message = results["shop/db/0"]
    assert (status, permanent) == (ChangeStatus.FAILED, True)
    assert "No valid host was found" in message
    assert results["shop/app/0"][0] is ChangeStatus.SKIPPED
    assert results["shop/cache/0"][0] is ChangeStatus.SUCCEEDED
    assert sorted(_ours(project)) == ["shop/cache/0"]  # the failed build was removed
