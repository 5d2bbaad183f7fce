"""Policy through the real command: validate, plan (text, JSON, markdown), apply and apply --plan,
per enforcement level; change windows with --now inside and outside; --override-window audited."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Cli

SMALL = """\
apiVersion: reconciler/v1
kind: Policy
metadata: {{name: limits}}
spec:
  scope: shop
  enforcement: {enforcement}
  rules:
    - name: small-servers
      expr: "server.size.cpus <= 1"
      message: servers are at most 1 vCPU
"""
WEEKEND = """\
apiVersion: reconciler/v1
kind: Policy
metadata: {name: weekend}
spec:
  scope: shop
  windows:
    - {deny: "0 18 * * 5", duration_hours: 62, message: no changes over the weekend}
"""
SATURDAY = "2026-11-07T10:00:00Z"  # inside the window: it opened Friday 18:00 and closes Monday 08:00
VIOLATION = (
    "clusters/limits.yaml:8: policy limits, rule small-servers: servers are at most 1 vCPU — "
    "shop/app/0, shop/app/1, shop/db/0"
)
WINDOW = (
    "clusters/weekend.yaml:7: policy weekend: no changes over the weekend (open 2026-11-06 18:00 → "
    "2026-11-09 08:00 UTC)"
)


def _servers(cli: Cli) -> list[dict[str, object]]:
    listed = cli("simcloud", "list", "--format", "json")
    assert listed.code == 0, listed.err
    rows: list[dict[str, object]] = json.loads(listed.out)
    return rows


def test_validate_denies_or_warns(cli: Cli, workdir: Path) -> None:
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="deny"))
    denied = cli("validate", "clusters")
    assert (denied.code, denied.out, denied.err) == (1, "", f"Error: {VIOLATION}\n")
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="warn"))
    warned = cli("validate", "clusters")
    assert warned.code == 0 and warned.err == f"Warning: {VIOLATION}\n"
    assert warned.out == "clusters: valid — 6 servers in 1 cluster on 1 provider\n"


def test_validate_locates_a_cel_error(cli: Cli, workdir: Path) -> None:
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="deny").replace("cpus <= 1", "cpus <= '1'"))
    result = cli("validate", "clusters")
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err == (
        "Error: clusters/limits.yaml:9: rule 'small-servers': the expression has a type error: found no "
        "matching overload for <= applied to '(int, string)'; compare like with like (numbers unquoted)\n"
    )


def test_a_deny_violation_fails_the_plan_and_is_listed_first_everywhere(cli: Cli, workdir: Path) -> None:
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="deny"))
    text = cli("plan", "clusters", "--detailed-exitcode")
    assert text.code == 1 and text.err == f"Error: {VIOLATION}\n"
    assert text.out.splitlines()[:3] == [
        "Policy: this plan is denied (1 deny violation); apply refuses it.",
        f"  deny: {VIOLATION}",
        "",
    ]
    as_json = cli("plan", "clusters", "--format", "json")
    assert as_json.code == 1
    document = json.loads(as_json.out)
    names = list(document)
    assert names[names.index("summary") + 1] == "violations"  # right after the summary
    assert [(v["rule"], v["enforcement"], v["file"], v["line"]) for v in document["violations"]] == [
        ("small-servers", "deny", "clusters/limits.yaml", 8)
    ]
    markdown = cli("plan", "clusters", "--format", "markdown")
    assert markdown.code == 1
    assert markdown.out.index("Policy: this plan is denied") < markdown.out.index("| action | count |")


def test_warnings_keep_the_exit_code_and_budgets_keep_3(cli: Cli, workdir: Path) -> None:
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="warn"))
    plain = cli("plan", "clusters")
    assert plain.code == 0 and plain.err == ""
    assert plain.out.splitlines()[:2] == ["Policy: 1 warning, nothing denied.", f"  warn: {VIOLATION}"]
    assert cli("plan", "clusters", "--detailed-exitcode").code == 2
    budget = "apiVersion: reconciler/v1\nkind: Budget\nmetadata: {name: cap}\n"
    budget += "spec: {scope: shop, monthly: '1.00'}\n"
    (workdir / "budget.yaml").write_text(budget)
    assert cli("plan", "clusters", "--detailed-exitcode").code == 3


def test_apply_and_apply_plan_refuse_a_denied_plan(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="deny"))
    refused = cli("apply", "clusters", "--yes")
    assert refused.code == 1
    assert refused.err == f"Error: {VIOLATION}; the plan is denied, nothing was applied\n"
    assert refused.out.startswith("Policy: this plan is denied")
    assert _servers(cli) == []
    saved = cli("plan", "clusters", "--format", "json", "--out", "plan.json")
    assert saved.code == 1 and (tmp_path / "plan.json").exists()
    replayed = cli("apply", "--plan", "plan.json")
    assert replayed.code == 1
    assert replayed.err == f"Error: {VIOLATION}; the plan is denied, nothing was applied\n"
    assert _servers(cli) == []


def test_a_warn_policy_never_blocks_an_apply(cli: Cli, workdir: Path) -> None:
    (workdir / "limits.yaml").write_text(SMALL.format(enforcement="warn"))
    applied = cli("apply", "clusters", "--yes")
    assert applied.code == 0, applied.err
    assert len(_servers(cli)) == 6


def test_a_window_blocks_applies_never_plans(cli: Cli, workdir: Path) -> None:
    (workdir / "weekend.yaml").write_text(WEEKEND)
    inside = cli("plan", "clusters", "--detailed-exitcode", now=SATURDAY)
    assert inside.code == 2, inside.err
    first = inside.out.splitlines()[0]
    assert first.startswith(f"Window: {WINDOW} — holds shop/app/0, shop/app/1, shop/db/0")
    refused = cli("apply", "clusters", "--yes", now=SATURDAY)
    assert refused.code == 1 and _servers(cli) == []
    assert refused.err == (
        f"Error: {WINDOW} holds back shop/app/0, shop/app/1, shop/db/0, shop/web/0, shop/web/1, shop/web/2; "
        "nothing was applied — apply after 2026-11-09 08:00 UTC, or pass --override-window REASON\n"
    )
    outside = cli("apply", "clusters", "--yes")  # Monday 10:00: the window closed at 08:00
    assert outside.code == 0, outside.err
    assert len(_servers(cli)) == 6


def test_a_plan_made_outside_a_window_is_refused_inside_it(cli: Cli, workdir: Path) -> None:
    (workdir / "weekend.yaml").write_text(WEEKEND)
    made = cli("plan", "clusters", "--format", "json", "--out", "plan.json", now="2026-11-06T17:00:00Z")
    assert made.code == 0 and not made.out.startswith("Window")
    refused = cli("apply", "--plan", "plan.json", now="2026-11-06T18:30:00Z")  # applied once it opened
    assert refused.code == 1 and "holds back" in refused.err and _servers(cli) == []
    applied = cli("apply", "--plan", "plan.json", now="2026-11-06T17:30:00Z")
    assert applied.code == 0, applied.err
    assert len(_servers(cli)) == 6


def test_override_window_passes_and_is_audited(cli: Cli, workdir: Path) -> None:
    (workdir / "weekend.yaml").write_text(WEEKEND)
    reason = "incident 4711: restore the shop"
    applied = cli("apply", "clusters", "--yes", "--override-window", reason, now=SATURDAY)
    assert applied.code == 0, applied.err
    assert applied.out.count(f"Window overridden ({reason}): clusters/weekend.yaml:7:") == 1
    assert len(_servers(cli)) == 6
    log = cli("audit", "log", "--format", "json")
    entries = [json.loads(line) for line in log.out.splitlines()]
    (override,) = [e for e in entries if e["action"] == "window.override"]
    detail = json.loads(override["detail"])
    assert detail["reason"] == "incident 4711: restore the shop"
    assert detail["windows"] == [f"{WINDOW}"]
    assert detail["keys"] == [s["key"] for s in sorted(_servers(cli), key=lambda s: str(s["key"]))]
    assert cli("audit", "verify").code == 0


def test_a_heal_passes_the_window_drift_does_not(cli: Cli, workdir: Path) -> None:
    (workdir / "weekend.yaml").write_text(WEEKEND)
    assert cli("apply", "clusters", "--yes").code == 0
    assert cli("simcloud", "fail", "shop/web/0").code == 0
    healed = cli("apply", "clusters", "--yes", now=SATURDAY)
    assert healed.code == 0, healed.err
    assert "-/+ shop/web/0 succeeded" in healed.out
    assert cli("simcloud", "edit", "shop/web/1", "--cpus", "4").code == 0
    drift = cli("apply", "clusters", "--yes", now=SATURDAY)
    assert drift.code == 1 and "holds back shop/web/1; nothing was applied" in drift.err
    strict = WEEKEND.replace("over the weekend}", "over the weekend, allow_heal: false}")
    (workdir / "weekend.yaml").write_text(strict)
    assert cli("simcloud", "fail", "shop/web/2").code == 0
    refused = cli("apply", "clusters", "--yes", now=SATURDAY)
    assert refused.code == 1 and "holds back shop/web/1, shop/web/2" in refused.err


def test_the_readme_shows_what_a_user_sees(cli: Cli, workdir: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = Path(__file__).resolve().parents[2] / "examples" / "policies" / "shop-limits.yaml"
    (workdir / "shop-limits.yaml").write_text(example.read_text())
    validated = cli("validate", "clusters")
    assert validated.code == 1 and validated.err.strip() in readme
    templates = workdir / "templates.yaml"
    tagged = templates.read_text().replace("    team: shop\n", "    team: shop\n    cost-center: cc-42\n")
    templates.write_text(tagged)
    assert cli("validate", "clusters").code == 0
    assert cli("apply", "clusters", "--yes").code == 0
    web = "    simcloud: debian-12-nginx\n    aws: ami-0c4e6f8a0b2d35791\n  size:\n    cpus: "
    big = tagged.replace(web + "1\n", web + "32\n")  # the web template's servers get 32 vCPUs
    assert big != tagged
    templates.write_text(big)
    planned = cli("plan", "clusters")
    assert planned.code == 1
    assert "\n".join(planned.out.splitlines()[:3]) in readme
    refused = cli("apply", "clusters", "--yes")
    assert refused.err.splitlines()[-1].removeprefix("Error: ") in readme.replace("\n", " ")
    templates.write_text(tagged)
    (workdir / "shop.yaml").write_text((workdir / "shop.yaml").read_text().replace("count: 3", "count: 4"))
    inside = cli("apply", "clusters", "--yes", now=SATURDAY)
    assert inside.code == 1 and inside.out.splitlines()[0] in readme and inside.err.strip() in readme
    override = ("--override-window", "incident 4711: checkout down")
    passed = cli("apply", "clusters", "--yes", *override, now=SATURDAY)
    assert passed.code == 0
    (overridden,) = [line for line in passed.out.splitlines() if line.startswith("Window overridden")]
    assert overridden in readme
