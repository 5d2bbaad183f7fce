"""The backup lifecycle through the engine on a real Nova: nightly ``image`` backups taken by the
backup cycle, retention deleting the old images, a final backup before destroy, and a restore of
the destroyed key from that final backup with the size its server had. What Nova holds is read
back through openstacksdk, the way an operator's tooling would see it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import openstack
import pytest

from providers.openstack.common import MARK_METHOD, MARK_RESTORED_FROM
from reconciler.backup.restore import restore
from reconciler.config import load_desired_state
from reconciler.core.backups import BackupKind
from reconciler.core.clock import parse_timestamp
from reconciler.core.model import TAG_GENERATION, TAG_KEY, TAG_OWNER, Action, Size
from reconciler.run.planning import plan_path
from tests.backup.support import (
    DEPLOYMENT,
    EPOCH,
    apply,
    cluster_yaml,
    cycle,
    policy_yaml,
    run_context,
    template_yaml,
    workspace,
    write_desired,
)
from tests.openstack.helpers import IMAGE_ID
from tests.openstack.novacloud import NovaCloud, Project

NIGHTS = 3
KEY = f"{DEPLOYMENT}/db/0"
TINY = Size(cpus=1, memory_mb=512, disk_gb=1)  # picks m1.tiny


def _provider_yaml(project: Project, nova: NovaCloud) -> str:
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
  price_list: standard
"""


def _template(size: Size) -> str:
    return template_yaml(image_type="openstack", image=IMAGE_ID, cpus=size.cpus, memory_mb=size.memory_mb,
                         disk_gb=size.disk_gb)


@pytest.fixture
def conn(nova: NovaCloud, project: Project) -> Iterator[Any]:
    """An openstacksdk connection to the test's project, from the session's clouds.yaml."""
    connection = openstack.connect(cloud=project.cloud_name)
    try:
        yield connection
    finally:
        connection.close()


def _servers(conn: Any) -> list[Any]:
    return [s for s in conn.compute.servers(details=True) if s.metadata.get(TAG_OWNER) == DEPLOYMENT]


def _backups(conn: Any) -> dict[str, Any]:
    """Our backup images, by id (Nova's image API, which openstacksdk's compute proxy still speaks)."""
    return {i.id: i for i in conn.compute.images(details=True) if i.metadata.get(TAG_OWNER) == DEPLOYMENT}


# openstacksdk warns that Nova's image API is a deprecated proxy; it is what the provider speaks too.
@pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning")
def test_backup_lifecycle_and_restore_on_nova(
    nova: NovaCloud, project: Project, conn: Any, tmp_path: Path
) -> None:
    policy = policy_yaml(keep_last=2, keep_daily=0, keep_weekly=0, method="image")
    desired = write_desired(tmp_path, provider=_provider_yaml(project, nova), policy=policy,
                            template=_template(TINY), cluster=cluster_yaml(provider="nova"))
    state = tmp_path / "state"
    assert apply(desired, state, EPOCH).ok  # our clock; Nova stamps the server with its own
    [first] = _servers(conn)
    assert (first.status, first.flavor.original_name) == ("ACTIVE", "m1.tiny")

    # Nova stamps the server with its own clock; the nights (02:00, the policy's tick) follow that.
    created = parse_timestamp(first.created_at)
    midnight = created.replace(hour=0, minute=0, second=0, microsecond=0)
    nights = [midnight + timedelta(days=1 + n, hours=2) for n in range(NIGHTS)]
    taken: list[str] = []
    for night in nights:
        report = cycle(desired, state, night)
        assert report.ok, report.failures
        assert report.count(BackupKind.TAKE) == 1
        taken += [r.snapshot_id for r in report.results if r.action.kind is BackupKind.TAKE]
    assert report.count(BackupKind.PRUNE) == 1  # the last night pruned the oldest image but one
    kept = _backups(conn)
    assert sorted(kept) == sorted(taken[-2:])  # keep_last 2: Nova deleted the older images
    for image in kept.values():
        assert image.status == "ACTIVE"
        assert (image.metadata[TAG_KEY], image.metadata[MARK_METHOD]) == (KEY, "image")
    assert cycle(desired, state, nights[-1] + timedelta(hours=1)).results == ()  # nothing due

    destroyed = apply(desired, state, nights[-1] + timedelta(hours=2), destroy=True)
    assert destroyed.ok, destroyed.results
    assert [b.action.kind for b in destroyed.backups] == [BackupKind.FINAL]
    final = destroyed.backups[0].snapshot_id
    assert _servers(conn) == []
    assert sorted(_backups(conn)) == sorted([*taken[-2:], final])

    # The template has grown since: the restore still brings back the backup's size.
    (desired / "templates.yaml").write_text(_template(Size(cpus=1, memory_mb=2048, disk_gb=1)))
    ws = workspace(state, nights[-1] + timedelta(hours=3))
    try:
        result = restore(load_desired_state(desired), ws, run_context(), KEY, final, confirm=lambda _: True)
    finally:
        ws.close()
    assert result.server is not None and result.replaced == () and result.backups == ()
    assert (result.server.key, result.server.size, result.server.generation) == (KEY, TINY, 1)

    [back] = _servers(conn)
    assert back.id == result.server.resource_id != first.id
    assert (back.status, back.flavor.original_name, back.image.id) == ("ACTIVE", "m1.tiny", final)
    assert (back.metadata[TAG_KEY], back.metadata[TAG_GENERATION]) == (KEY, "1")
    assert back.metadata[MARK_RESTORED_FROM] == final
    assert final in _backups(conn)  # a restore uses the backup, it does not consume it

    ws = workspace(state, nights[-1] + timedelta(hours=4))
    try:
        store = ws.store()
        assert store.verify().ok
        assert store.unresolved_intents(DEPLOYMENT) == []
        changes = plan_path(desired, ws).changes
        assert [(c.key, c.action) for c in changes] == [(KEY, Action.UPDATE)]  # to the template's size
    finally:
        ws.close()
