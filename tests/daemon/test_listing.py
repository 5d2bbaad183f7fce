"""A daemon cycle opens each provider once and lists each cloud once before it decides.

Counted on simcloud with small pages, so "once" is visible as ceil(servers / page) listing
calls: a converged cycle makes exactly those (plus one backup listing per provider when a
backup policy is declared); a cycle that changes something lists once more to verify.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from reconciler.daemon.context import CycleOutcome
from tests.daemon.conftest import PROVIDERS, Cycles, cluster, in_process_cycles
from tests.daemon.test_daemon_cycle import NIGHTLY

PAGED = PROVIDERS.replace("  type: simcloud\n", "  type: simcloud\n  page_size: 4\n")
SERVERS = 11  # 10 web + 1 db: three pages of four


def _cycle_calls(cycles: Cycles, seconds: float) -> tuple[CycleOutcome, Counter[str]]:
    before = Counter(cycles.ws.calls)
    outcome = cycles.at(seconds)
    return outcome, Counter(cycles.ws.calls) - before


def test_a_converged_cycle_lists_each_cloud_once(tmp_path: Path) -> None:
    files = {"providers.yaml": PAGED, "shop.yaml": cluster(10)}
    with in_process_cycles(tmp_path, files) as cycles:
        outcome, calls = _cycle_calls(cycles, 0)
        assert outcome is CycleOutcome.CONVERGED
        assert calls["list_servers"] == 1 + 3  # empty before, three pages to verify the creates
        assert calls["create_server"] == SERVERS
        for seconds in (60, 120):
            outcome, calls = _cycle_calls(cycles, seconds)
            assert outcome is CycleOutcome.CONVERGED
            listing = {op: n for op, n in calls.items() if op.startswith("list")}
            assert listing == {"list_servers": 3}, calls
            assert not any(op.startswith(("create", "delete", "update")) for op in calls), calls


def test_with_a_backup_policy_servers_and_backups_are_each_listed_once(tmp_path: Path) -> None:
    shop = cluster(10).replace("      count: 1\n", "      count: 1\n      backup_policy: often\n", 1)
    daily = NIGHTLY.replace("* * * * *", "0 3 * * *")  # not due during the test
    files = {"providers.yaml": PAGED, "shop.yaml": shop, "policy.yaml": daily}
    with in_process_cycles(tmp_path, files) as cycles:
        assert cycles.at(0) is CycleOutcome.CONVERGED
        outcome, calls = _cycle_calls(cycles, 60)
        assert outcome is CycleOutcome.CONVERGED
        listing = {op: n for op, n in calls.items() if op.startswith("list")}
        assert listing == {"list_servers": 3, "list_snapshots": 1}, calls
