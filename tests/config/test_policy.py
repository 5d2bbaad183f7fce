"""The Policy kind: loaded and its CEL compiled at validate (every problem at file:line), and the
checks the desired state alone decides — per rule type, per enforcement level, per scope."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.config import load_desired_state
from reconciler.config.cel import CelRule, Compiled, compile_rule
from reconciler.core.errors import UserError
from reconciler.core.limits import MAX_RULE_CHARS
from reconciler.core.model import SENSITIVE, DesiredState, ResolvedInput, SecretRef
from reconciler.core.policy import check_policies, server_variables
from reconciler.core.policy_model import Enforcement, QuotaResource, RuleFailure, Subject, ViolationKind
from tests.config.badcase import BASE, WEB, cluster
from tests.config.conftest import WriteFiles

REPO = Path(__file__).resolve().parents[2]


def policy(body: str, *, scope: str = "shop", enforcement: str = "deny") -> str:
    """A Policy 'limits' (line 8 is the first line of ``body``)."""
    return (
        "apiVersion: reconciler/v1\nkind: Policy\nmetadata:\n  name: limits\nspec:\n"
        f"  scope: {scope}\n  enforcement: {enforcement}\n{body}"
    )


def load(write_files: WriteFiles, body: str, **kw: str) -> tuple[Path, DesiredState]:
    root = write_files({"base.yaml": BASE, "shop.yaml": cluster(WEB), "policy.yaml": policy(body, **kw)})
    return root, load_desired_state(root)


def errors(write_files: WriteFiles, body: str, **kw: str) -> list[str]:
    root = write_files({"base.yaml": BASE, "shop.yaml": cluster(WEB), "policy.yaml": policy(body, **kw)})
    with pytest.raises(UserError) as caught:
        load_desired_state(root)
    return [str(d).removeprefix(f"{root}/") for d in caught.value.diagnostics]


def test_the_readme_example_loads_with_the_example_clusters(tmp_path: Path) -> None:
    root = tmp_path / "clusters"
    shutil.copytree(REPO / "examples" / "clusters", root)
    shutil.copy(REPO / "examples" / "policies" / "shop-limits.yaml", root)
    state = load_desired_state(root)
    (found,) = state.policies
    assert (found.name, found.scope, found.enforcement) == ("shop-limits", "shop", Enforcement.DENY)
    assert {q.resource: q.limit for q in found.quotas} == {
        QuotaResource.SERVERS: 40,
        QuotaResource.VCPUS: 96,
        QuotaResource.MEMORY_GB: 256,
        QuotaResource.DISK_GB: 4000,
        QuotaResource.MONTHLY_COST: Decimal("2500.00"),
    }
    assert [(r.name, r.subject) for r in found.rules] == [
        ("small-servers", Subject.SERVER),
        ("no-prod-replace", Subject.CHANGE),
    ]
    (window,) = found.windows
    assert (window.deny, window.duration_hours, window.allow_heal) == ("0 18 * * 5", 62, True)
    assert str(window.where) == f"{root}/shop-limits.yaml:23"
    # The example templates carry a team tag but no cost-center: that is the one violation.
    (violation,) = check_policies(state.policies, state.servers)
    assert str(violation) == (
        f"{root}/shop-limits.yaml:14: policy shop-limits, rule required_tags: servers must carry the tag "
        "'cost-center'; add it to their templates' tags — shop/app/0, shop/app/1, shop/db/0, shop/web/0, "
        "shop/web/1, shop/web/2"
    )


RULE = "  rules:\n    - name: r\n      message: m\n      expr: "  # the expression is on line 11


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            RULE + '"server.size.cpus <= && true"\n',
            "policy.yaml:11: rule 'r': the expression is not valid CEL: a syntax error at column 21, at "
            "'&& true'; check the operator or name there (column 21)",
            id="syntax",
        ),
        pytest.param(
            RULE + '"server.size.cpus <="\n',
            "policy.yaml:11: rule 'r': the expression is not valid CEL: a syntax error at column 18, "
            "at '<='; check the operator or name there (column 18)",
            id="ends-early",
        ),
        pytest.param(
            RULE + '"server.sise.cpus < 4"\n',
            "policy.yaml:11: rule 'r': the expression server has no field 'sise'; did you mean 'size'? "
            "(column 8)",
            id="unknown-field",
        ),
        pytest.param(
            RULE + '"sever.size.cpus < 4"\n',
            "policy.yaml:11: rule 'r': the expression names 'sever', which is not a variable; rules use "
            "server, change and plan (did you mean 'server'?)",
            id="unknown-variable",
        ),
        pytest.param(
            RULE + "\"server.size.cpus <= '16'\"\n",
            "policy.yaml:11: rule 'r': the expression has a type error: found no matching overload for <= "
            "applied to '(int, string)'; compare like with like (numbers unquoted)",
            id="type-error",
        ),
        pytest.param(
            RULE + '"server.size.cpus"\n',
            "policy.yaml:11: rule 'r': the expression must be true or false: it gives int, not true or false",
            id="not-boolean",
        ),
        pytest.param(
            RULE + "\"server.image.startswith('debian')\"\n",
            "policy.yaml:11: rule 'r': the expression calls unknown function 'startswith'; did you mean "
            "'startsWith'? (column 14)",
            id="unknown-function",
        ),
        pytest.param(
            RULE + '"server.tags.all(a, server.tags.all(b, a != b))"\n',
            "policy.yaml:11: rule 'r': the expression has all() inside another comprehension; write them one "
            "by one (column 32)",
            id="nested-comprehension",
        ),
        pytest.param(
            RULE + '"' + "(" * 17 + "true" + ")" * 17 + '"\n',
            "policy.yaml:11: rule 'r': the expression nests more than 16 levels deep; write it flatter",
            id="too-deep",
        ),
        pytest.param(
            RULE + '"' + "true && " * 130 + 'true"\n',
            "policy.yaml:11: spec.rules[0].expr is longer than 1000 characters; shorten it",
            id="too-long",
        ),
        pytest.param(
            RULE + "|\n        server.size.cpus <= 16 &&\n        server.sise.disk_gb <= 100\n",
            "policy.yaml:13: rule 'r': the expression server has no field 'sise'; did you mean 'size'? "
            "(column 8)",
            id="block-scalar-second-line",
        ),
        pytest.param(
            "  rules:\n    - {name: r, expr: 'true', message: m}\n"
            "    - {name: r, expr: 'true', message: n}\n",
            "policy.yaml:10: two rules of policy 'limits' are named 'r' (the first at line 9); rename one",
            id="duplicate-rule",
        ),
        pytest.param(
            "  windows:\n    - {deny: '0 18 * *', duration_hours: 2}\n",
            "policy.yaml:9: window deny '0 18 * *' is not a valid cron expression; write five fields (minute "
            "hour day-of-month month day-of-week) in UTC, e.g. '0 18 * * 5' for Fridays at 18:00",
            id="window-cron",
        ),
        pytest.param(
            "  windows:\n    - {deny: '0 0 30 2 *', duration_hours: 2}\n",
            "policy.yaml:9: window deny '0 0 30 2 *' never opens (no date matches it, such as 30 February); "
            "fix the day of the month or the month",
            id="window-never",
        ),
        pytest.param(
            "  windows:\n    - {deny: '0 18 * * 5', duration_hours: 745}\n",
            "policy.yaml:9: spec.windows[0].duration_hours must be at most 744, got the integer 745",
            id="window-too-long",
        ),
        pytest.param(
            "  quotas: {vcpus: -1}\n",
            "policy.yaml:8: spec.quotas.vcpus must be at least 0, got the integer -1",
            id="negative-quota",
        ),
        pytest.param(
            "  quotas: {monthly_cost: 12.0000000001}\n",
            "policy.yaml:8: spec.quotas.monthly_cost 12.0000000001 has more than 9 digits after the decimal "
            "point; write a decimal of at most 9 digits before the point and 9 after, such as '2500.00'",
            id="money",
        ),
        pytest.param(
            "  allowed: {images: []}\n",
            "policy.yaml:8: spec.allowed.images must not be empty; give it a value",
            id="empty-allowed",
        ),
        pytest.param(
            "  quota: {vcpus: 4}\n",
            "policy.yaml:8: unknown field 'quota' in spec; did you mean 'quotas'?",
            id="unknown-field-in-spec",
        ),
    ],
)
def test_problems_are_located(write_files: WriteFiles, body: str, expected: str) -> None:
    assert errors(write_files, body) == [expected]


def test_scope_must_be_global_or_a_cluster(write_files: WriteFiles) -> None:
    assert errors(write_files, "  required_tags: [team]\n", scope="shoop") == [
        "policy.yaml:6: Policy 'limits' has scope 'shoop', which is neither 'global' nor a Cluster; "
        "did you mean 'shop'?"
    ]


def test_enforcement_is_deny_or_warn(write_files: WriteFiles) -> None:
    assert errors(write_files, "  required_tags: [team]\n", enforcement="block") == [
        "policy.yaml:7: spec.enforcement must be one of deny, warn; got the string 'block'"
    ]


# --- the static checks, per rule type ----------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "rule", "kind", "message"),
    [
        ("  quotas: {servers: 1}\n", "quotas.servers", ViolationKind.QUOTA,
         "the desired state asks for 2 servers in cluster shop, over the quota of 1"),
        ("  quotas: {vcpus: 1}\n", "quotas.vcpus", ViolationKind.QUOTA,
         "the desired state asks for 2 vCPUs in cluster shop, over the quota of 1"),
        ("  quotas: {memory_gb: 1}\n", "quotas.memory_gb", ViolationKind.QUOTA,
         "the desired state asks for 2 GB of memory in cluster shop, over the quota of 1"),
        ("  quotas: {disk_gb: 19}\n", "quotas.disk_gb", ViolationKind.QUOTA,
         "the desired state asks for 20 GB of disk in cluster shop, over the quota of 19"),
        ("  allowed: {providers: [aws-*]}\n", "allowed.providers", ViolationKind.ALLOWED,
         "provider 'sim' is not allowed (allowed: aws-*)"),
        ("  allowed: {images: ['debian-11*', ubuntu-*]}\n", "allowed.images", ViolationKind.ALLOWED,
         "image 'debian-12' is not allowed (allowed: debian-11*, ubuntu-*)"),
        ("  required_tags: [team]\n", "required_tags", ViolationKind.REQUIRED_TAGS,
         "servers must carry the tag 'team'; add it to their templates' tags"),
        (RULE + '"server.size.memory_mb < 1024"\n', "r", ViolationKind.RULE, "m"),
        (RULE + "\"server.tags.env == 'prod'\"\n", "r", ViolationKind.EVALUATION,
         "could not be evaluated: no such member in mapping: 'env'"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("enforcement", ["deny", "warn"])
def test_each_rule_type_at_each_enforcement(
    write_files: WriteFiles, body: str, rule: str, kind: ViolationKind, message: str, enforcement: str
) -> None:
    _, state = load(write_files, body, enforcement=enforcement)
    (violation,) = check_policies(state.policies, state.servers)
    found = (violation.policy, violation.rule, violation.kind, violation.message)
    assert found == ("limits", rule, kind, message)
    assert violation.enforcement is Enforcement(enforcement)
    assert violation.denies is (enforcement == "deny")
    assert violation.keys == ("shop/web/0", "shop/web/1")
    assert violation.where.line == (9 if kind in (ViolationKind.RULE, ViolationKind.EVALUATION) else 8)


def test_what_holds_is_no_violation(write_files: WriteFiles) -> None:
    body = (
        "  quotas: {servers: 2, vcpus: 2, memory_gb: 2, disk_gb: 20, monthly_cost: 0}\n"
        "  allowed: {providers: [sim], images: ['debian-1?'], flavors: [none-yet]}\n"
        "  rules:\n"
        "    - {name: small, expr: 'server.size.cpus <= 16', message: m}\n"
        "    - {name: guarded, expr: \"!has(server.tags.env) || server.tags.env != 'prod'\", message: m}\n"
        "    - {name: no-deletes, expr: \"change.action != 'delete'\", message: m}\n"
        "    - {name: cheap, expr: 'plan.cost.after < 1.0', message: m}\n"
    )
    _, state = load(write_files, body)
    # monthly_cost, change and plan rules need a plan; a server with no flavor yet is checked once
    # the plan asked its provider for one
    assert check_policies(state.policies, state.servers) == ()


def test_scope_decides_which_servers_count(write_files: WriteFiles) -> None:
    other = cluster(WEB).replace("name: shop", "name: shed")
    root = write_files(
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(WEB),
            "shed.yaml": other,
            "shop-policy.yaml": policy("  quotas: {servers: 2}\n"),
            "all-policy.yaml": policy("  quotas: {servers: 3}\n", scope="global").replace("limits", "all"),
        }
    )
    state = load_desired_state(root)
    (violation,) = check_policies(state.policies, state.servers)
    assert violation.policy == "all" and violation.message == (
        "the desired state asks for 4 servers in all clusters, over the quota of 3"
    )
    assert violation.keys == ("shed/web/0", "shed/web/1", "shop/web/0", "shop/web/1")


# --- what CEL sees, and what an evaluation costs -----------------------------------------------------
def test_secret_inputs_never_reach_cel(write_files: WriteFiles) -> None:
    _, state = load(write_files, "  required_tags: [team]\n")
    server = state.servers[0]
    server = type(server)(
        **{
            **server.__dict__,
            "inputs": (
                ResolvedInput("password", "hunter2-secret", "member inputs", sensitive=True),
                ResolvedInput("token", SecretRef("env", "TOKEN"), "member inputs"),
                ResolvedInput("port", 8080, "template default"),
            ),
        }
    )
    variables = server_variables(server)
    assert variables["inputs"] == {"password": SENSITIVE, "token": SENSITIVE, "port": 8080}
    assert "hunter2" not in repr(variables) and "TOKEN" not in repr(variables)
    compiled = compile_rule("server.inputs.password != 'hunter2-secret' && server.inputs.port == 8080")
    assert isinstance(compiled, Compiled) and compiled.program({"server": variables}) is True


def test_an_expression_over_the_limit_is_refused_before_parsing() -> None:
    (problem,) = compile_rule("true && " * (MAX_RULE_CHARS // 8) + "true")  # type: ignore[misc]
    assert "more than 1000" in problem.message


class _Exploding:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def evaluate(self, context: object) -> object:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (RecursionError(), "it nests too deeply to evaluate"),
        (ZeroDivisionError(), "the CEL evaluator failed (ZeroDivisionError)"),
    ],
)
def test_any_evaluation_failure_is_a_rule_failure_never_a_crash(exc: BaseException, message: str) -> None:
    rule = CelRule(_Exploding(exc))  # type: ignore[arg-type]
    with pytest.raises(RuleFailure, match=r"^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        rule({})


def test_cel_errors_read_short() -> None:
    compiled = compile_rule("server.inputs.missing > 1")
    assert isinstance(compiled, Compiled)
    with pytest.raises(RuleFailure) as caught:
        compiled.program({"server": {"inputs": {}}})
    assert str(caught.value) == "no such member in mapping: 'missing'"
    compiled = compile_rule("server.inputs.a == 'x' && server.inputs.b == 1")
    assert isinstance(compiled, Compiled)
    with pytest.raises(RuleFailure) as caught:
        compiled.program({"server": {"inputs": {}}})
    assert str(caught.value) == "no such member in mapping: 'a'"
    compiled = compile_rule("1 / server.size.cpus == 1")
    assert isinstance(compiled, Compiled)
    with pytest.raises(RuleFailure, match="divide by zero"):
        compiled.program({"server": {"size": {"cpus": 0}}})
