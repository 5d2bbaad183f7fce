"""cli.adopt: taking over a fleet that already runs — ``generate``, ``forget`` and ``status``.

* ``reconciler generate PATH --provider NAME [--out FILE] [--match PATTERN] [--cluster NAME]``
  writes the templates and the cluster that adopt the servers a provider runs unowned
  (``config.generate``, listed by ``run.adoption.unowned``);
* ``reconciler forget PATH KEY`` drops the ownership marks of one key's server, which keeps
  running (``run.adoption.forget``, audited);
* ``reconciler status PATH [--format text|json] [--target SELECTOR]…`` shows every key's
  provider, resource id, power and sync state, last change and cost (``run.status``).

Adoption itself is planned and applied like any change: ``plan`` and ``apply`` show it as
``= adopt``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.cli.common import EXIT_ERROR, EXIT_OK, PATH_HELP, format_option, workspace, write_out
from reconciler.core.errors import Diagnostic, UserError

if TYPE_CHECKING:  # the handlers import what they run: building the parser must not import the engine
    from reconciler.core.status import KeyStatus
    from reconciler.run.status import Status

TARGET_HELP = (
    "only this cluster, cluster/member or cluster/member/ordinal (repeatable); what they must "
    "wait for comes along, what waits for them is left alone"
)


def add_target(parser: argparse.ArgumentParser) -> None:
    """``--target SELECTOR``, repeatable (plan, apply, destroy, status)."""
    parser.add_argument("--target", action="append", default=[], metavar="SELECTOR", help=TARGET_HELP)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    help_text = "write YAML that adopts the servers a provider runs and no deployment owns"
    p = sub.add_parser("generate", help=help_text, parents=[common], description=help_text)
    p.add_argument("path", type=Path, help=PATH_HELP + ", holding the Provider document")
    p.add_argument("--provider", required=True, metavar="NAME", help="the Provider document's name")
    p.add_argument("--out", type=Path, help="write the YAML to this file instead of stdout")
    p.add_argument("--match", metavar="PATTERN", help="only servers whose name matches this glob (web-*)")
    p.add_argument("--cluster", metavar="NAME", help="the Cluster's name (default: the provider's)")
    p.set_defaults(handler=cmd_generate)

    help_text = "stop managing one server: drop its ownership marks, leave it running"
    p = sub.add_parser("forget", help=help_text, parents=[common], description=help_text)
    p.add_argument("path", type=Path, help=PATH_HELP)
    p.add_argument("key", help="the server's key, CLUSTER/MEMBER/ORDINAL")
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    p.set_defaults(handler=cmd_forget)

    help_text = "every server's power and sync state, last change and cost, from one observation"
    p = sub.add_parser("status", help=help_text, parents=[common], description=help_text)
    p.add_argument("path", type=Path, help=PATH_HELP)
    p.add_argument("--deployment", help="owner mark (default: the folder's name)")
    format_option(p, ["text", "json"], "a table per cluster (text) or JSON")
    add_target(p)
    p.set_defaults(handler=cmd_status)


# --- generate -----------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from reconciler.config.generate import clean_name, generate_yaml
    from reconciler.run.adoption import unowned

    ws = workspace(args)
    try:
        found = unowned(args.path, args.provider, ws)
    finally:
        ws.close()
    servers = [s for s in found.servers if args.match is None or fnmatch.fnmatchcase(s.name, args.match)]
    if not servers:
        matching = f" matching {args.match!r}" if args.match else ""
        raise UserError(Diagnostic(
            str(args.path), None,
            f"provider {args.provider} runs no server{matching} that no deployment owns; nothing to generate",
        ))
    cluster = args.cluster or clean_name(args.provider, "adopted")
    if clean_name(cluster) != cluster:
        raise UserError(Diagnostic("--cluster", None, f"{cluster!r} is not a valid name; use [a-z0-9-]"))
    if any(s.cluster == cluster for s in found.state.servers):
        raise UserError(Diagnostic(
            str(args.path), None, f"already declares cluster {cluster!r}; name the new one with --cluster"
        ))
    command = f"reconciler generate {args.path} --provider {args.provider}"
    generated = generate_yaml(
        servers, provider=found.provider, cluster=cluster, command=command,
        taken_templates={s.template for s in found.state.servers},
    )
    if args.out is not None:
        write_out(args.out, generated.text)
        print(
            f"{args.out}: {generated.servers} server(s) in {generated.members} member(s) of cluster "
            f"{cluster}, {generated.templates} template(s); review it, then run: reconciler plan {args.path}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(generated.text)
    return EXIT_OK


# --- forget -------------------------------------------------------------------------------------
def cmd_forget(args: argparse.Namespace) -> int:
    from reconciler.run.adoption import forget
    from reconciler.run.audit import new_run
    from reconciler.run.identity import detect_identity

    identity = detect_identity(args.path, getattr(args, "actor", None))
    ws = workspace(args)
    try:
        run = new_run(identity.actor, identity.commit)
        done = forget(args.path, args.key, ws, run, deployment=args.deployment)
    finally:
        ws.close()
    for message in done.recovered:
        print(f"Recovered: {message}")
    for server in done.servers:
        print(f"Forgot {done.key}: {server.provider}/{server.resource_id} ({server.name}) keeps running, "
              "no longer managed")
    if done.still_declared:
        print(
            f"Warning: {done.key} is still declared in {args.path}: the next apply makes a server for it "
            "again (or adopts what its adopt: entry names) — remove it from the YAML",
            file=sys.stderr,
        )
    return EXIT_OK


# --- status -------------------------------------------------------------------------------------
def _money(row: KeyStatus) -> str:
    from reconciler.cli.render import format_hourly

    return format_hourly(row.hourly, row.currency) + "/h" if row.hourly is not None else "-"


def _drift(row: KeyStatus) -> str:
    """What drifted: what the plan heals, then what the member's ``drift: warn``/``ignore`` holds back."""
    parts = [row.healed] if row.healed else []
    if row.held and row.drift_policy is not None:
        parts.append(f"{', '.join(row.held)}, held by drift: {row.drift_policy.value}")
    return f" ({'; '.join(parts)})" if parts else ""


def render_status_text(report: Status) -> str:
    from reconciler.cli.render import format_hourly
    from reconciler.core.status import Power, Sync

    headers = ["KEY", "PROVIDER", "RESOURCE", "POWER", "SYNC", "LAST CHANGE", "COST"]
    rows = [
        [
            r.key, r.provider, r.resource_id or "-", r.power.value,
            r.sync.value + _drift(r),
            str(r.last_change) if r.last_change else "-", _money(r),
        ]
        for r in report.servers
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]
    ]
    if report.targets:
        lines.insert(0, f"Targeted: {', '.join(report.targets)}")
    lines.append("")
    for c in report.clusters:
        power = ", ".join(f"{c.power[p]} {p.value}" for p in Power if c.power[p] or p is not Power.PENDING)
        sync = ", ".join(f"{c.sync[s]} {s.value}" for s in Sync if c.sync[s] or s is Sync.SYNCED)
        currency = next((r.currency for r in report.servers if r.cluster == c.cluster and r.currency), "")
        cost = f"; {format_hourly(c.hourly, currency)}/h" if currency else ""
        lines.append(f"Cluster {c.cluster}: {c.servers} server(s) — {power}; {sync}{cost}")
    lines.extend(f"Warning: {d}" for d in report.diagnostics)
    return "\n".join(lines) + "\n"


def status_json(report: Status) -> dict[str, Any]:
    def amount(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "deployment": report.deployment,
        "targets": list(report.targets),
        "servers": [
            {
                "key": r.key, "provider": r.provider, "resource_id": r.resource_id, "power": r.power.value,
                "sync": r.sync.value, "drift": r.drift,
                "drift_policy": r.drift_policy.value if r.drift_policy is not None else None,
                "held": list(r.held),
                "last_change": None if r.last_change is None else {
                    "action": r.last_change.action, "outcome": r.last_change.outcome,
                    "at": r.last_change.at.isoformat().replace("+00:00", "Z"), "actor": r.last_change.actor,
                },
                "hourly": amount(r.hourly), "currency": r.currency,
            }
            for r in report.servers
        ],
        "clusters": [
            {
                "cluster": c.cluster, "servers": c.servers,
                "power": {p.value: n for p, n in c.power.items()},
                "sync": {s.value: n for s, n in c.sync.items()},
                "hourly": str(c.hourly),
            }
            for c in report.clusters
        ],
        "diagnostics": list(report.diagnostics),
    }


def cmd_status(args: argparse.Namespace) -> int:
    from reconciler.run.status import status

    ws = workspace(args)
    try:
        report = status(args.path, ws, deployment=args.deployment, targets=args.target)
    finally:
        ws.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(status_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(render_status_text(report))
    return EXIT_OK if report.servers or not report.targets else EXIT_ERROR
