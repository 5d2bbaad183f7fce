"""daemon.loop: ``reconciler run`` — pull a branch and keep every cloud converged to it, forever.

The loop is level-triggered: a cycle (``daemon.cycle.reconcile``) re-observes and plans
from scratch, so a missed webhook or a crash between cycles never matters. A cycle runs

* every ``--interval`` seconds (default 60), and
* at once when the branch moved: the daemon fetches every ``--git-poll`` seconds (default
  15), and ``POST /hooks/git`` asks for a fetch right away.

**Which commit.** Each cycle reconciles one exact commit. A new tip of the branch is
loaded and validated first; when it is valid it becomes the *good* commit (a ``commit``
entry in the audit ledger: sha, author, message). When it is not, it is *rejected*: a
``rejected`` entry with every file:line diagnostic, an ``invalid-commit`` alert, and the
daemon keeps reconciling the last good commit until a newer commit fixes things. A commit
a deny Policy refuses is rejected the same way, with a ``policy-denied`` alert: at once when
its desired state alone breaks the policy (quotas, allowed lists, tags, server rules), or
when the first plan made from it does (change and plan rules, ``monthly_cost``) — then the
last good commit is reconciled in the same cycle. When the good commit's own plan is denied
later (the clouds changed), that plan is refused, recorded once and alerted. After a
restart onto an invalid tip, the last good commit is found again through the ledger.
Every audit entry of a cycle carries the daemon's identity as its operator (``actor``) and the
commit's sha, author and committer (``commit``, ``author``, ``committer``);
its message is in the ``commit`` entry and in the run's ``run.start`` entry.

**Stopping.** SIGTERM or SIGINT sets ``stopping``: the loop takes no new cycle, the
executor starts no new change (``cancel``), in-flight provider calls finish, apply closes
its run in the ledger; then the daemon records that it stopped, releases its leases,
drains its alert queue and exits 0. If in-flight work does not finish within
``--shutdown-timeout`` seconds the process exits 1 and the next start settles whatever
intent was left open (the intent log's crash safety).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import structlog

from reconciler.config import deployment_name, load_desired_state, resolve_secret
from reconciler.core.audit_detail import (
    CommitAdopted,
    CommitRejected,
    DaemonStarted,
    DaemonStopped,
    PolicyDenied,
)
from reconciler.core.errors import PolicyDeniedError, UserError
from reconciler.core.model import AlertEvent
from reconciler.core.policy import check_policies
from reconciler.core.records import AuditAction
from reconciler.daemon.alerts import Alert, Alerter
from reconciler.daemon.backoff import KeyBackoff
from reconciler.daemon.context import CycleContext, CycleOutcome, CycleReport, DaemonOptions
from reconciler.daemon.cycle import reconcile, release_leases
from reconciler.daemon.http import DaemonMetrics, Probes
from reconciler.daemon.notify import raise_alert
from reconciler.daemon.source import Commit, GitSource
from reconciler.run.audit import AuditWriter, RunContext
from reconciler.run.gate import denial
from reconciler.run.leases import hostname
from reconciler.run.workspace import Workspace

log = structlog.get_logger("reconciler.daemon")

SOURCE_DIR = "source"
_MAX_ERRORS_RECORDED = 50


class Daemon:
    """The reconcile loop and everything around it; ``run`` blocks until ``request_stop``."""

    def __init__(self, options: DaemonOptions, ws: Workspace, metrics: DaemonMetrics | None = None) -> None:
        self.options = options
        self.ws = ws
        self.metrics = metrics or DaemonMetrics()
        self.identity = f"daemon-{uuid.uuid4().hex[:8]}@{hostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._hook = threading.Event()
        self.source = GitSource(
            options.source, ws.state_dir / SOURCE_DIR, branch=options.branch, path=options.path
        )
        self.alerter = Alerter(resolve_secret=resolve_secret, on_delivery=self._delivered)
        self.ctx = CycleContext(
            ws=ws,
            options=options,
            metrics=self.metrics,
            alerter=self.alerter,
            identity=self.identity,
            cancel=self.stopping.is_set,
            heartbeat=self._beat,
            backoff=KeyBackoff(base_seconds=options.backoff_base, cap_seconds=options.backoff_cap),
        )
        self.good: Commit | None = None
        self._fresh: str | None = None  # a commit adopted and not yet planned: a denied plan rejects it
        self._previous: Commit | None = None  # the good commit before the fresh one
        self.deployment: str | None = options.deployment
        self._tip: Commit | None = None
        self._handled_tip: str | None = None
        self._rejected: set[str] = set()
        self._ready = False
        self._why_not_ready = "starting: no cycle finished yet"
        self._heartbeat = time.monotonic()
        self._announced = False
        self.last_report: CycleReport | None = None
        self.loop_alive = False
        self.cycling = False  # a cycle runs now (the console shows it live)
        self.cycles_done = 0
        self.last_cycle_at: datetime | None = None

    # --- probes and triggers ----------------------------------------------------------------
    def _beat(self) -> None:
        self._heartbeat = time.monotonic()

    def probes(self) -> Probes:
        return Probes(health=self.health, ready=self.ready, hook=self.trigger_fetch)

    def health(self) -> tuple[bool, str]:
        if not self.loop_alive:
            return False, "the reconcile loop is not running"
        age = time.monotonic() - self._heartbeat
        limit = max(10 * self.options.interval, 600.0)
        if age > limit:
            return False, f"no progress for {age:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self.stopping.is_set():
            return False, "shutting down"
        return (True, "ok") if self._ready else (False, self._why_not_ready)

    def trigger_fetch(self) -> None:
        self._hook.set()
        self._wake.set()

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping: finishing in-flight work")
        self.stopping.set()
        self._wake.set()

    def _delivered(self, sink: str, alert: Alert, ok: bool) -> None:
        self.metrics.alerts.labels(alert.event.value, sink, "delivered" if ok else "failed").inc()

    # --- which commit ------------------------------------------------------------------------
    def _fetch(self) -> Commit | None:
        """The branch tip after a fetch; on failure the last tip known (the loop goes on)."""
        try:
            self._tip = self.source.fetch()
        except UserError as exc:
            self.metrics.errors.labels("fetch").inc()
            log.warning("fetch failed; reconciling the last good commit", error=str(exc))
        except Exception:
            self.metrics.errors.labels("fetch").inc()
            log.exception("fetch crashed; reconciling the last good commit")
        return self._tip

    def _deployment(self, commit: Commit) -> str:
        return self.options.deployment or deployment_name(self.source.root(commit) / self.source.subpath)

    def _run_for(self, commit: Commit) -> RunContext:
        return RunContext(  # the daemon is the operator; the commit's author made the change
            run_id=uuid.uuid4().hex[:12], actor=self.identity, commit=commit.sha, message=commit.message,
            author=commit.author, committer=commit.committer,
        )

    def _validate(self, commit: Commit) -> UserError | None:
        """Why a commit cannot be reconciled (invalid, or denied by a Policy on its own), or None."""
        try:
            state = load_desired_state(self.source.checkout(commit), deployment=self.options.deployment)
        except UserError as exc:
            return self.source.relative(exc, commit)
        denied = [v for v in check_policies(state.policies, state.servers) if v.denies]
        return self.source.relative(denial(denied), commit) if denied else None

    def _adopt(self, commit: Commit) -> None:
        self.good = commit
        self.deployment = self._deployment(commit)
        store = self.ws.store()
        run = self._run_for(commit)
        detail = CommitAdopted(
            message=commit.message, source=self.source.shown, branch=self.options.branch, daemon=self.identity
        )
        AuditWriter(store, self.ws.clock, self.deployment, run).commit(detail)
        self.metrics.commit.clear()
        self.metrics.commit.labels(commit.sha).set(1)
        log.info("reconciling commit", commit=commit.short, author=commit.author, message=commit.message)

    def _reject(self, commit: Commit, error: UserError) -> None:
        self._rejected.add(commit.sha)
        deployment = self._deployment(commit)
        store = self.ws.store()
        errors = [str(d) for d in error.diagnostics]
        denied = isinstance(error, PolicyDeniedError)
        self.metrics.rejected.inc()
        why = "a deny policy refuses it" if denied else "its desired state is invalid"
        log.warning(f"commit rejected: {why}", commit=commit.short, errors=errors[:10])
        recorded = any(
            e.record.commit == commit.sha
            for e in store.recent_audit(deployment, [AuditAction.REJECTED], limit=50)
        )
        if recorded:  # a restart: the ledger has it already
            return
        run = self._run_for(commit)
        keeping = f"; still reconciling {self.good.short}" if self.good else "; nothing is reconciled yet"
        kept = self.good.sha if self.good else None
        writer = AuditWriter(store, self.ws.clock, deployment, run)
        first = errors[0] if errors else ""
        recorded_errors = tuple(errors[:_MAX_ERRORS_RECORDED])
        if denied:
            writer.deny_commit(PolicyDenied(commit.message, recorded_errors, kept), first)
        else:
            writer.reject_commit(CommitRejected(commit.message, recorded_errors, kept), first)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        alert = Alert(
            event=AlertEvent.POLICY_DENIED if denied else AlertEvent.INVALID_COMMIT,
            deployment=deployment,
            at=self.ws.clock.now(),
            subject=commit.sha,
            commit=commit.sha,
            summary=f"commit {commit.short} by {commit.author} is "
            f"{'denied by policy' if denied else 'invalid'}: {first or 'no details'}{more}{keeping}",
            details={"errors": errors[:_MAX_ERRORS_RECORDED], "message": commit.message},
        )
        raise_alert(self.ctx, store, run, alert)

    def _restore(self, tip: Commit) -> None:
        """After a restart onto an invalid tip: resume the newest commit the ledger says was good."""
        store = self.ws.store()
        for entry in store.recent_audit(self._deployment(tip), [AuditAction.COMMIT], limit=20):
            sha = entry.record.commit
            if sha in self._rejected or not self.source.has(sha):
                continue
            commit = self.source.commit(sha)
            if self._validate(commit) is None:
                log.info("resuming the last good commit from the ledger", commit=commit.short)
                self._adopt(commit)
                return

    def select(self, tip: Commit | None) -> tuple[Path, Commit] | None:
        """The checkout to reconcile this cycle (the good commit), adopting or rejecting a new tip."""
        if (
            tip is not None
            and tip.sha not in self._rejected
            and (self.good is None or tip.sha != self.good.sha)
        ):
            problem = self._validate(tip)
            if problem is None:
                self._previous, self._fresh = self.good, tip.sha
                self._adopt(tip)
            else:
                self._reject(tip, problem)
                if self.good is None:
                    self._restore(tip)
        if self.good is None:
            return None
        keep = {self.good.sha} | ({tip.sha} if tip is not None else set())
        self.source.prune(keep)
        return self.source.checkout(self.good), self.good

    # --- the loop ------------------------------------------------------------------------------
    def cycle(self, tip: Commit | None) -> CycleReport:
        self.cycling = True
        try:
            return self._cycle(tip)
        finally:
            self.cycling = False
            self.cycles_done += 1
            self.last_cycle_at = self.ws.clock.now()

    def _cycle(self, tip: Commit | None) -> CycleReport:
        started = time.monotonic()
        if tip is not None:
            self._handled_tip = tip.sha
        try:
            selected = self.select(tip)
            if selected is None:
                report = CycleReport(CycleOutcome.IDLE, message="no valid commit to reconcile yet")
                self._why_not_ready = report.message
            else:
                report = self._reconcile(*selected)
                if report.observed:
                    self._ready = True
                else:
                    self._why_not_ready = report.message
        except Exception as exc:  # the loop must survive anything one cycle meets
            log.exception("cycle crashed")
            self.metrics.errors.labels("internal").inc()
            report = CycleReport(CycleOutcome.FAILED, message=f"internal error: {exc!r}")
        elapsed = time.monotonic() - started
        self.metrics.cycles.labels(report.outcome.value).inc()
        self.metrics.cycle_duration.observe(elapsed)
        if report.outcome is CycleOutcome.CONVERGED:
            self.metrics.last_sync.set(time.time())
        self._beat()
        self.last_report = report
        log.info(
            "cycle",
            outcome=report.outcome.value,
            changes=report.changes,
            applied=report.applied,
            failed=report.failed,
            held=report.held,
            seconds=round(elapsed, 3),
            commit=self.good.short if self.good else None,
            detail=report.message or None,
        )
        return report

    def _reconcile(self, path: Path, commit: Commit) -> CycleReport:
        """One cycle for ``commit``; when a deny Policy refuses the first plan of a fresh commit,
        the commit is rejected and the last good one reconciled instead, in this cycle."""
        run = self._run_for(commit)
        self._announce(run)
        sub = f":{self.source.subpath}" if self.source.subpath else ""
        label = f"{self.source.shown}@{commit.short}{sub}"
        fresh = commit.sha == self._fresh
        report = reconcile(self.ctx, path, run, label, fresh=fresh)
        if report.observed:
            self._fresh = None
        if report.outcome is not CycleOutcome.DENIED:
            return report
        denied = self.source.relative(PolicyDeniedError(list(report.denied)), commit)
        if not fresh:
            self._refuse(commit, run, denied)
            return report
        previous, self.good = self._previous, self._previous
        self._reject(commit, denied)
        if previous is not None and previous.sha not in self._rejected:
            self._adopt(previous)
        else:
            self.good = None
            self._restore(commit)
        if self.good is None:
            return report
        return self._reconcile(self.source.checkout(self.good), self.good)

    def _refuse(self, commit: Commit, run: RunContext, error: UserError) -> None:
        """The good commit's plan is denied by a Policy now: recorded once (until one passes), alerted."""
        errors = [str(d) for d in error.diagnostics]
        message = "; ".join(errors)
        if message == self.ctx.last_refusal or self.deployment is None:
            return
        self.ctx.last_refusal = message
        store = self.ws.store()
        AuditWriter(store, self.ws.clock, self.deployment, run).refuse_plan(message)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        alert = Alert(
            event=AlertEvent.POLICY_DENIED,
            deployment=self.deployment,
            at=self.ws.clock.now(),
            subject=commit.sha,
            commit=commit.sha,
            summary=f"the plan for commit {commit.short} is denied by policy, nothing applied: "
            f"{errors[0]}{more}",
            details={"errors": errors[:_MAX_ERRORS_RECORDED]},
        )
        raise_alert(self.ctx, store, run, alert)

    def _announce(self, run: RunContext) -> None:
        if self._announced or self.deployment is None:
            return
        self._announced = True
        detail = DaemonStarted(self.identity, self.source.shown, self.options.branch, self.options.interval)
        self._lifecycle(run).run_start(detail)

    def _lifecycle(self, run: RunContext) -> AuditWriter:
        """The writer of the daemon's own run.start and run.end: their actor is the daemon."""
        assert self.deployment is not None
        run = dataclasses.replace(run, actor=self.identity)
        return AuditWriter(self.ws.store(), self.ws.clock, self.deployment, run)

    def run(self) -> None:
        """Cycle until ``request_stop``: on the timer, on a new commit, on the webhook."""
        self.loop_alive = True
        try:
            next_cycle = time.monotonic()
            next_poll = next_cycle + self.options.git_poll
            fetched: Commit | None = None  # a tip the poll just fetched, for the cycle it triggers
            while not self.stopping.is_set():
                now = time.monotonic()
                if self._hook.is_set() or now >= next_cycle:
                    self._hook.clear()
                    self.cycle(fetched or self._fetch())
                    fetched = None
                    next_cycle = time.monotonic() + self.options.interval
                    next_poll = time.monotonic() + self.options.git_poll
                    if self.options.once:
                        return
                    continue
                if now >= next_poll:
                    next_poll = now + self.options.git_poll
                    tip = self._fetch()
                    self._beat()
                    if tip is not None and tip.sha != self._handled_tip:
                        log.info("new commit on the branch", commit=tip.short)
                        fetched, next_cycle = tip, now
                        continue
                self._wake.wait(max(0.0, min(next_cycle, next_poll) - time.monotonic()))
                self._wake.clear()
        finally:
            self.loop_alive = False

    def finish(self, *, clean: bool) -> None:
        """Record the stop, release the leases (when no work is left in flight), drain alerts."""
        if clean:
            if self.good is not None and self.deployment is not None:
                self._lifecycle(self._run_for(self.good)).run_end(DaemonStopped(self.identity))
            release_leases(self.ctx)
        self.alerter.close(timeout=5.0)
