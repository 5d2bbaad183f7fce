"""cli.commands: one handler per CLI command — gathers arguments, calls the engine, prints results.

Handlers return the process exit code. Output goes to stdout; diagnostics and logs to
stderr. Colour and the live progress bar (``cli.progress``) appear only on a terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import (
    EXIT_BUDGET,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    color,
    emit,
    state_dir,
    tty,
    workspace,
)
from reconciler.core.errors import Diagnostic, UserError

if TYPE_CHECKING:  # each handler imports what it runs: ``validate`` needs no engine, no cloud, no store
    from reconciler.core.model import DesiredState
    from reconciler.core.plan import Plan
    from reconciler.run.workspace import Workspace
    from reconciler.store.base import Store


def cmd_validate(args: argparse.Namespace) -> int:
    from reconciler.config import load_desired_state
    from reconciler.core.policy import check_policies

    state = load_desired_state(args.path, deployment=args.deployment)
    for warning in (*state.warnings, *_adopted_notes(args, state)):
        print(f"Warning: {warning}", file=sys.stderr)
    violations = check_policies(state.policies, state.servers)  # what the desired state alone decides
    for violation in violations:
        print(f"{'Error' if violation.denies else 'Warning'}: {violation}", file=sys.stderr)
    if any(v.denies for v in violations):
        return EXIT_ERROR
    clusters = len({s.cluster for s in state.servers})
    print(
        f"{args.path}: valid — {_count(len(state.servers), 'server')} in {_count(clusters, 'cluster')} "
        f"on {_count(len(state.providers), 'provider')}"
    )
    return EXIT_OK


def _adopted_notes(args: argparse.Namespace, state: DesiredState) -> list[str]:
    """``adopt:`` entries the audit ledger says were carried out (validate touches no cloud)."""
    if not any(s.adopt_id for s in state.servers):
        return []
    from reconciler.run.audit import adopted

    ws = workspace(args)
    try:
        store = ws.existing_store()
        done = adopted(store, state.deployment) if store is not None else {}
    finally:
        ws.close()
    return [
        f"{s.adopt_location or s.location}: {s.key} was adopted ({s.adopt_id}); its adopt: entry "
        "is a no-op now and can be removed"
        for s in state.servers
        if s.adopt_id and done.get(s.key) == s.adopt_id
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _plan(args: argparse.Namespace, ws: Workspace, *, destroy: bool = False) -> Plan:
    from reconciler.run.identity import detect_identity
    from reconciler.run.planning import plan_path

    identity = detect_identity(args.path, getattr(args, "actor", None))
    plan = plan_path(
        args.path,
        ws,
        deployment=args.deployment,
        commit=getattr(args, "source_commit", None) or identity.commit,
        destroy=destroy,
        skip_final_backup=getattr(args, "skip_final_backup", False),
        targets=getattr(args, "target", ()) or (),
    )
    return _with_tree(args, plan)


def _with_tree(args: argparse.Namespace, plan: Plan) -> Plan:
    """The plan with its commit's author and committer, and the git tree of its folder when the
    folder is exactly that commit's (``run.provenance``)."""
    from reconciler.run import provenance

    tree, tree_path = getattr(args, "source_tree", None) or (None, "")
    author, committer = getattr(args, "source_people", None) or ("", "")
    if getattr(args, "source_commit", None) is None:
        found = provenance.of_folder(args.path)
        if found is None or found.commit != plan.commit:
            return plan
        if found.tree is None:
            print(f"Warning: the plan records no git tree: {found.problem}", file=sys.stderr)
        tree, tree_path, author, committer = found.tree, found.tree_path, found.author, found.committer
    return dataclasses.replace(plan, tree=tree, tree_path=tree_path, author=author, committer=committer)


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler.cli.daemon import from_source

    with from_source(args):  # --source: PATH inside a commit checked out to a temporary folder
        return _cmd_plan(args)


def _cmd_plan(args: argparse.Namespace) -> int:
    from reconciler.cli import render, review
    from reconciler.run.keys import plan_key

    ws = workspace(args)
    try:
        plan = _plan(args, ws)
    finally:
        ws.close()
    rendered = {
        "text": lambda: render.render_text(plan, color=args.out is None and color(args)),
        "json": lambda: render.render_json(plan, plan_key(ws.state_dir)),
        "markdown": lambda: review.render_markdown(plan, where=args.full_plan or review.DEFAULT_WHERE),
    }[args.format]()
    emit(args, rendered)  # --out: the file instead of stdout
    if plan.denied:  # listed first in the plan too; a deny policy's violation is an error
        for violation in plan.denied:
            print(f"Error: {violation}", file=sys.stderr)
        return EXIT_ERROR
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_BUDGET if plan.breaks_budget else EXIT_CHANGES
    return EXIT_OK


def _confirm(plan: Plan, yes: bool, verb: str) -> bool:
    if yes:
        return True
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(f"refusing to {verb} without --yes when not run on a terminal")
    answer = input(f"\nDo you want to {verb} these changes? Only 'yes' will be accepted: ")
    return answer.strip() == "yes"


def _execute(args: argparse.Namespace, ws: Workspace, plan: Plan, verb: str) -> int:
    from reconciler.cli import progress, render
    from reconciler.run.apply import apply_plan
    from reconciler.run.audit import new_run
    from reconciler.run.backups import describe as describe_backup
    from reconciler.run.executor import ChangeStatus
    from reconciler.run.gate import check_policy
    from reconciler.run.identity import detect_identity

    sys.stdout.write(render.render_text(plan, color=color(args)))
    check_policy(plan, ws.clock.now(), args.override_window)  # refused before asking (apply checks again)
    if plan.has_changes and not _confirm(plan, args.yes, verb):
        print("Cancelled; nothing was changed.")
        return EXIT_ERROR
    identity = detect_identity(args.path, getattr(args, "actor", None))
    if plan.commit:  # the change is the plan's commit, by its author, whoever applies it
        run = new_run(identity.actor, plan.commit, author=plan.author, committer=plan.committer)
    else:
        run = new_run(identity.actor, identity.commit, author=identity.author, committer=identity.committer)
    live = tty() and getattr(args, "log_format", None) != "json"  # a bar on a terminal, else lines
    on_result, stop = progress.reporter(plan.changes, live=live, color=color(args))
    try:
        report = apply_plan(
            plan,
            ws,
            run,
            max_deletes=args.max_deletes,
            allow_mass_delete=args.allow_mass_delete,
            on_result=on_result,
            override_window=args.override_window,
        )
    finally:
        stop()
    for note in report.notes:
        print(note)
    for message in report.recovered:
        print(f"Recovered: {message}")
    for backup in report.backups:
        print(describe_backup(backup))
    if not plan.has_changes:
        return EXIT_OK if report.ok else EXIT_ERROR
    print(
        f"\nApply complete: {report.count(ChangeStatus.SUCCEEDED)} succeeded, "
        f"{report.count(ChangeStatus.FAILED)} failed, {report.count(ChangeStatus.SKIPPED)} skipped."
    )
    for problem in report.problems:
        print(f"Not converged: {problem}")
    return EXIT_OK if report.ok else EXIT_ERROR


def cmd_apply(args: argparse.Namespace) -> int:
    from reconciler.cli.daemon import from_source

    with from_source(args):
        return _cmd_apply(args)


def _cmd_apply(args: argparse.Namespace) -> int:
    from reconciler.core.plan_codec import load_signed_plan
    from reconciler.run import provenance
    from reconciler.run.keys import plan_key

    if (args.path is None) == (args.plan_file is None):
        raise UserError("apply needs either a PATH of desired state or --plan FILE (not both)")
    if args.plan_file is not None and args.target:
        raise UserError("--target limits planning; a saved plan carries the targets it was made with")
    if args.expect_tree is not None:
        if args.plan_file is None:
            raise UserError("--expect-tree checks a saved plan: give it with --plan FILE")
        provenance.check_expected(args.expect_tree)
    ws = workspace(args)
    try:
        if args.plan_file is not None:
            plan = load_signed_plan(
                read_plan_file(args.plan_file), plan_key(ws.state_dir), source=str(args.plan_file)
            )
            if args.expect_tree is not None:  # refused before anything is shown or applied
                provenance.check_plan_tree(plan, args.expect_tree, source=str(args.plan_file), cwd=Path.cwd())
            args.yes = True  # a saved plan was reviewed already
            return _execute(args, ws, plan, "apply")
        return _execute(args, ws, _plan(args, ws), "apply")
    finally:
        ws.close()


PLAN_FILE_BYTES = 256 * 1024 * 1024  # a plan of 10,000 servers is a few tens of MB


def read_plan_file(path: Path) -> str:
    """A saved plan's text: a regular file (a FIFO is refused, never waited on), bounded, UTF-8."""
    from reconciler.config.yamlsafe import Unreadable, read_bytes

    try:
        raw = read_bytes(
            path,
            PLAN_FILE_BYTES,
            too_large="is larger than 256 MiB, more than any plan this reconciler writes; give the plan file",
            fix="give the plan file that plan --format json --out wrote",
        )
        return raw.decode("utf-8")
    except Unreadable as exc:
        raise UserError(Diagnostic(str(path), None, str(exc))) from None
    except UnicodeDecodeError:
        raise UserError(Diagnostic(str(path), None, "is not UTF-8 text, so not a plan file")) from None


def cmd_destroy(args: argparse.Namespace) -> int:
    ws = workspace(args)
    try:
        return _execute(args, ws, _plan(args, ws, destroy=True), "destroy")
    finally:
        ws.close()


def cmd_graph(args: argparse.Namespace) -> int:
    from reconciler.core.graph import to_dot, to_text
    from reconciler.run.planning import plan_path

    ws = workspace(args)
    try:
        plan = plan_path(args.path, ws, deployment=args.deployment, targets=args.target)
    finally:
        ws.close()
    if plan.targets:  # on stderr: the graph itself stays valid dot
        print(f"Targeted: {', '.join(plan.targets)} (other keys were not planned).", file=sys.stderr)
    sys.stdout.write(to_dot(plan.changes) if args.format == "dot" else to_text(plan.changes))
    return EXIT_OK


def cmd_inputs(args: argparse.Namespace) -> int:
    from reconciler.config import explain_inputs

    for item in explain_inputs(args.path, args.target):
        print(f"{item.name} = {item.display()}    # from {item.source}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from reconciler.cli import auditlog

    ws = workspace(args)
    try:
        store = ws.existing_store()
        if args.audit_command == "verify":
            if store is None:
                print("audit ledger is empty: nothing to verify")
                return EXIT_OK
            store.check_integrity()  # a damaged page or index: UserError, exit 1
            return _verify_audit(store, ws)
        query = auditlog.query_of(args)  # a bad filter is refused before anything is read
        entries = list(store.audit_search(query)) if store is not None else []
        if args.format == "json":
            sys.stdout.write(auditlog.format_json(entries))
        else:
            sys.stdout.write(auditlog.format_table(entries, color=color(args)))
        return EXIT_OK
    finally:
        ws.close()


def _verify_audit(store: Store, ws: Workspace) -> int:
    """The hash chain, then the signed checkpoints outside the store (``run.anchor``)."""
    from reconciler.run import anchor

    result = store.verify()
    if not result.ok:
        print(f"audit ledger BROKEN at entry {result.first_bad_seq}: {result.problem}", file=sys.stderr)
        return EXIT_ERROR
    anchored = anchor.verify(store, ws.store_location())
    if not anchored.ok:
        print(f"audit ledger BROKEN: {anchored.problem}", file=sys.stderr)
        return EXIT_ERROR
    print(f"audit ledger intact: {result.entries} entries, hash chain verified")
    if anchored.checkpoints:
        print(
            f"anchored: {anchored.checkpoints} signed checkpoints agree, the newest covering "
            f"entries 1-{anchored.covered_seq} and the closed usage intervals"
        )
    else:
        print("not anchored: no signed checkpoint of this ledger was found")
    return EXIT_OK


def cmd_simcloud(args: argparse.Namespace) -> int:
    from reconciler.core.model import Size
    from reconciler.core.provider import provider_class

    injector = provider_class("simcloud").fault_injector
    if injector is None:  # pragma: no cover - the built-in simcloud offers one
        raise UserError("provider type 'simcloud' offers no admin operations in this build")

    directory = state_dir(args)
    if args.sim_command == "list":
        rows = injector.list_servers(directory)
        if args.format == "json":
            print(json.dumps(rows, indent=2, default=str))
        else:
            for row in rows:
                print(
                    f"{row['key']:<28} {row['status']:<8} {row['cpus']} vCPU {row['memory_mb']:>6} MB "
                    f"{row['disk_gb']:>4} GB  {row['resource_id']}  {row['provider']}"
                )
        return EXIT_OK
    if args.sim_command == "fail":
        injector.fail(directory, args.key)
    elif args.sim_command == "stop":
        injector.stop(directory, args.key)
    elif args.sim_command == "delete":
        injector.delete(directory, args.key)
    elif args.sim_command == "create":
        made = injector.create(
            directory, provider=args.provider, name=args.name, image=args.image,
            size=Size(args.cpus, args.memory_mb, args.disk_gb), flavor=args.flavor,
        )
        print(f"simcloud: created {args.name} ({made['resource_id']}), owned by nobody")
        return EXIT_OK
    elif args.sim_command == "edit":
        if args.cpus is None and args.memory_mb is None:
            raise UserError("simcloud edit needs --cpus and/or --memory-mb")
        injector.edit(directory, args.key, cpus=args.cpus, memory_mb=args.memory_mb)
    print(f"simcloud: {args.sim_command} {args.key}: done")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "destroy": cmd_destroy,
    "graph": cmd_graph,
    "inputs": cmd_inputs,
    "audit": cmd_audit,
    "simcloud": cmd_simcloud,
}
