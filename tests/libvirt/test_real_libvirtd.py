"""End to end against a real libvirtd: the ``reconciler`` CLI makes QEMU domains, checked with ``virsh``.

apply → an empty second plan → a size change (restart in place where the update policy
allows it, replacement where it does not: planned, then applied) → destroy, each as a
subprocess so all state
crosses process boundaries. What exists is read with ``virsh`` (the real client), never
with our own observe. Domains are software-emulated (``type='qemu'``), boot nothing from an
empty qcow2 image and use user-mode networking: they only need to reach "running".

Needs ``qemu:///system`` (scripts/setup/libvirt.sh sets one up); skipped, with the reason,
where it does not answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.libvirt.backup import record_name
from providers.libvirt.provider import LibvirtProvider
from providers.libvirt.xml import NS
from reconciler.core.clock import Clock
from reconciler.core.model import BackupMethod, ProviderConfig, Size, SnapshotRequest
from reconciler.core.provider import AdoptRequest, ProviderContext
from tests.libvirt.fixtures import NOW, make_request
from tests.libvirt.world import IMAGE, QEMU_URI, QemuHost, qemu_skip_reason

REPO = Path(__file__).resolve().parents[2]
SECRET = "lab-api-key-5f1e"

pytestmark = [
    pytest.mark.libvirtd,
    pytest.mark.slow,
    pytest.mark.skipif(qemu_skip_reason() is not None, reason=qemu_skip_reason() or ""),
]


def virsh(*args: str) -> str:
    done = subprocess.run(["virsh", "-c", QEMU_URI, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def owned_domains(owner: str) -> dict[str, ET.Element]:
    """name → XML of every domain on the host whose metadata names ``owner``."""
    found = {}
    for name in virsh("list", "--all", "--name").split():
        root = ET.fromstring(virsh("dumpxml", name))
        if root.findtext(f"metadata/{{{NS}}}server/{{{NS}}}owner") == owner:
            found[name] = root
    return found


def size_of(root: ET.Element) -> tuple[str | None, str | None]:
    return root.findtext("vcpu"), root.findtext("memory")


def desired_state(folder: Path, host: QemuHost) -> None:
    folder.mkdir()
    (folder / "providers.yaml").write_text(f"""\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: kvm-e2e
spec:
  type: libvirt
  uri: {QEMU_URI}
  storage_pool: {host.pool_name}
  domain_type: qemu
  interface_type: user
  shutdown_timeout_seconds: 0.5
  max_parallel: 4
""")
    (folder / "templates.yaml").write_text("""\
apiVersion: reconciler/v1
kind: ServerTemplate
metadata:
  name: tiny
spec:
  image:
    libvirt: base.qcow2
  size:
    cpus: 1
    memory_mb: 64
    disk_gb: 1
  inputs:
    greeting:
      type: string
      default: hello-from-the-seed
    api_key:
      type: string
      required: true
      sensitive: true
  scripts:
    boot: |
      #!/bin/sh
      GREETING={{ greeting }}
      API_KEY={{ api_key }}
      echo "$GREETING" > /etc/motd
  tags:
    role: e2e
""")
    (folder / "lab.yaml").write_text("""\
apiVersion: reconciler/v1
kind: Cluster
metadata:
  name: lab
spec:
  provider: kvm-e2e
  members:
    web:
      template: tiny
      count: 2
      update:
        strategy: in-place
        allow_restart: true
      inputs:
        api_key: {secret: "env:LAB_API_KEY"}
    worker:
      template: tiny
      count: 1
      update:
        strategy: in-place
        allow_restart: false
      inputs:
        api_key: {secret: "env:LAB_API_KEY"}
""")


@pytest.fixture
def host() -> Iterator[QemuHost]:
    started = QemuHost.start()
    try:
        yield started
    finally:
        started.remove_owned(prefix="e2e-")
        started.stop()


def test_cluster_of_three_through_the_cli(host: QemuHost, tmp_path: Path) -> None:
    deployment = f"e2e-{uuid.uuid4().hex[:8]}"  # the owner mark: the folder's name
    desired = tmp_path / deployment
    desired_state(desired, host)
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "LAB_API_KEY": SECRET,
           "RECONCILER_STATE_DIR": str(tmp_path / "state"), "RECONCILER_NOW": "2026-11-01T12:00:00Z"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args, str(desired)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    applied = cli("apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "3 to create" in applied.stdout
    domains = owned_domains(deployment)
    assert sorted(domains) == ["lab-web-0", "lab-web-1", "lab-worker-0"]
    for name, root in domains.items():
        assert virsh("domstate", name).strip() == "running"
        assert root.get("type") == "qemu" and size_of(root) == ("1", str(64 * 1024))
    uuids = {name: root.findtext("uuid") for name, root in domains.items()}
    volumes = host.volumes()
    assert len(volumes) == 1 + 2 * 3  # the image, and a disk and a seed per server
    # The secret is resolved inside the provider call and reaches the guest's seed, never the output.
    seed = next(v for v in volumes if v.startswith("lab-web-0-") and v.endswith("-seed.iso"))
    cdrom = domains["lab-web-0"].find("devices/disk[@device='cdrom']/source")
    assert cdrom is not None and cdrom.get("volume") == seed  # attached to the guest, read-only
    virsh("vol-download", "--pool", host.pool_name, seed, str(tmp_path / "seed.iso"))
    content = (tmp_path / "seed.iso").read_bytes()
    assert SECRET.encode() in content and b"hello-from-the-seed" in content
    assert SECRET not in applied.stdout + applied.stderr

    settled = cli("plan", "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout + settled.stderr

    templates = desired / "templates.yaml"
    text = templates.read_text()
    templates.write_text(text.replace("cpus: 1\n    memory_mb: 64", "cpus: 2\n    memory_mb: 96"))
    resize = cli("plan", "--detailed-exitcode")
    assert resize.returncode == 2, resize.stdout + resize.stderr
    assert "2 to update" in resize.stdout and "1 to replace" in resize.stdout
    resized = cli("apply", "--yes")
    assert resized.returncode == 0, resized.stdout + resized.stderr

    after = owned_domains(deployment)
    assert sorted(after) == ["lab-web-0", "lab-web-1", "lab-worker-0-g1"]
    for name in ("lab-web-0", "lab-web-1"):  # restarted in place: same domains
        assert after[name].findtext("uuid") == uuids[name]
    assert after["lab-worker-0-g1"].findtext("uuid") != uuids["lab-worker-0"]  # replaced
    for name, root in after.items():
        assert size_of(root) == ("2", str(96 * 1024))
        assert virsh("domstate", name).strip() == "running"
    workers = [v for v in host.volumes() if v.startswith("lab-worker-")]
    assert len(workers) == 2 and all(v.startswith("lab-worker-0-g1-") for v in workers)  # the old one's went

    destroyed = cli("destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert owned_domains(deployment) == {}
    assert host.volumes() == [IMAGE]


def test_snapshots_and_metrics_on_qemu(host: QemuHost, tmp_path: Path) -> None:
    """Internal snapshots of a running QEMU domain, and the counters getAllDomainStats reports."""
    config = ProviderConfig(name="kvm-e2e", type="libvirt", spec=host.provider_spec())
    provider = LibvirtProvider(config, ProviderContext(state_dir=tmp_path, clock=Clock(fixed=NOW)))
    owner = f"e2e-{uuid.uuid4().hex[:8]}"
    try:
        server = provider.create(make_request("lab/db/0", owner=owner, size=Size(1, 64, 1)))
        [sample] = provider.metrics([server])
        assert sample.cpu_seconds > 0  # QEMU has been emulating the firmware
        assert sample.memory_mb == 64 and sample.net_rx_bytes >= 0 and sample.net_tx_bytes >= 0

        snap = provider.snapshot(server, SnapshotRequest(name="lab-db-0-nightly", policy="nightly"))
        assert virsh("snapshot-list", server.name, "--name").split() == ["lab-db-0-nightly"]
        provider.delete(server)  # its snapshot keeps the disk: retired, shut off
        retired = f"lab-db-0.retired-{server.resource_id[:8]}"
        assert virsh("domstate", retired).strip() == "shut off"
        assert [s.snapshot_id for s in provider.list_snapshots(owner)] == [snap.snapshot_id]
        provider.delete_snapshot(snap)
        assert owned_domains(owner) == {} and host.volumes() == [IMAGE]
    finally:
        provider.close()


def test_image_backup_and_restore_on_qemu(host: QemuHost, tmp_path: Path) -> None:
    """An image backup of a running QEMU domain (a block copy), restored after its server is gone
    into a bigger disk, and the restored server surviving the backup's deletion."""
    config = ProviderConfig(name="kvm-e2e", type="libvirt", spec=host.provider_spec())
    provider = LibvirtProvider(config, ProviderContext(state_dir=tmp_path, clock=Clock(fixed=NOW)))
    owner = f"e2e-{uuid.uuid4().hex[:8]}"
    try:
        server = provider.create(make_request("lab/db/0", owner=owner, size=Size(1, 64, 1)))
        request = SnapshotRequest(name="lab-db-0-nightly", policy="nightly", method=BackupMethod.IMAGE)
        snap = provider.snapshot(server, request)
        assert provider.calls["virDomainBlockCopy"] == 1  # copied live: QEMU holds the disk's lock
        assert virsh("domstate", server.name).strip() == "running"
        record = record_name("lab-db-0-nightly", owner)
        assert virsh("domstate", record).strip() == "shut off"
        source = ET.fromstring(virsh("dumpxml", record)).find("devices/disk/source")
        assert source is not None and source.get("pool") == host.pool_name
        image = str(source.get("volume"))
        image_xml = ET.fromstring(virsh("vol-dumpxml", "--pool", host.pool_name, image))
        assert image_xml.find("backingStore/path") is None  # standalone: no backing chain
        assert virsh("snapshot-list", server.name, "--name").split() == []

        provider.delete(server)
        assert owned_domains(owner) == {}  # the record is not a server
        bigger = make_request("lab/db/0", owner=owner, generation=1, size=Size(1, 64, 2))
        restored = provider.create_from_snapshot(bigger, snap)
        assert virsh("domstate", restored.name).strip() == "running"
        disk = ET.fromstring(virsh("dumpxml", restored.name)).find("devices/disk[@device='disk']/source")
        assert disk is not None and disk.get("volume") != image
        disk_xml = ET.fromstring(virsh("vol-dumpxml", "--pool", host.pool_name, str(disk.get("volume"))))
        assert disk_xml.findtext("capacity") == str(2 * 1024**3)
        assert disk_xml.find("backingStore/path") is None
        assert any(v.startswith(f"lab-db-0-g1-{restored.resource_id[:8]}") and v.endswith("-seed.iso")
                   for v in host.volumes())

        provider.delete_snapshot(snap)
        assert image not in host.volumes() and record not in virsh("list", "--all", "--name").split()
        assert virsh("domstate", restored.name).strip() == "running"
        provider.delete(restored)
        assert host.volumes() == [IMAGE]
    finally:
        provider.close()


def _qcow2(host: QemuHost, name: str) -> None:
    host.pool().createXML(f"<volume><name>{name}</name><capacity unit='MiB'>16</capacity>"
                          "<target><format type='qcow2'/></target></volume>", 0)


def _disk(source: str, dev: str) -> str:
    return (f"<disk type='{'volume' if 'pool=' in source else 'file'}' device='disk'>"
            f"<driver name='qemu' type='qcow2'/><source {source}/><target dev='{dev}' bus='virtio'/></disk>")


def test_an_adopted_domain_is_deleted_with_its_own_disks_on_qemu(host: QemuHost, tmp_path: Path) -> None:
    """Plain libvirt XML domains on the real daemon: one adopted with a disk by path, one by pool
    volume and one shared with a shut-off domain; deleting it removes its own two, not the shared."""
    config = ProviderConfig(name="kvm-e2e", type="libvirt", spec=host.provider_spec())
    provider = LibvirtProvider(config, ProviderContext(state_dir=tmp_path, clock=Clock(fixed=NOW)))
    owner, tag = f"e2e-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    for name in ("own.qcow2", "data.qcow2", "shared.qcow2"):
        _qcow2(host, name)
    hand, legacy = f"hand-{tag}", f"legacy-{tag}"
    shared = f"file='{host.directory}/shared.qcow2'"
    disks = [_disk(f"file='{host.directory}/own.qcow2'", "vda"),
             _disk(f"pool='{host.pool_name}' volume='data.qcow2'", "vdb"), _disk(shared, "vdc")]
    for name, devices, start in ((hand, disks, True), (legacy, [_disk(shared, "vda")], False)):
        dom = host.conn.defineXML(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
                                  f"<vcpu>1</vcpu><os><type>hvm</type></os><devices>{''.join(devices)}"
                                  "</devices></domain>")
        host.handmade.append(name)
        if start:
            dom.create()
    try:
        [server] = [s for s in provider.list_unowned() if s.name == hand]
        request = AdoptRequest(owner=owner, key="lab/hand/0", token="t" * 32, generation=0, spec_hash="x",
                               cluster="lab", member="hand")
        adopted = provider.adopt(server, request)
        assert virsh("domstate", hand).strip() == "running" and adopted.resource_id == server.resource_id
        marks = ET.fromstring(virsh("dumpxml", hand)).findall(f"metadata/{{{NS}}}server/{{{NS}}}adopted-disk")
        assert sorted(m.get("volume") for m in marks) == ["data.qcow2", "own.qcow2"]
        provider.delete(adopted)
        assert hand not in virsh("list", "--all", "--name").split()
        assert host.volumes() == [IMAGE, "shared.qcow2"]  # the shut-off legacy domain still uses it
    finally:
        provider.close()
