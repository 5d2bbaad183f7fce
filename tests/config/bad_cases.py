"""A corpus of bad desired-state folders and the exact diagnostics each must produce.

Each case is data: the files of one folder and the diagnostic lines expected from
``load_desired_state`` on it, with file names relative to the folder (the test prefixes
the folder as the user named it). Used by ``test_bad_inputs.py`` and by the CLI tests
(exit code 1, no traceback, nothing written). Write a case with ``write_case`` so that
undecodable bytes (written here as surrogate escapes) reach the disk as raw bytes, and named
pipes, sockets and symbolic links (``BadCase.special``) are made. The input-safety cases
(non-regular files, numbers, money, cron, server names, control characters) are in
``bad_cases_safety.py``.
"""

from __future__ import annotations

from tests.config.bad_cases_safety import SAFETY_CASES
from tests.config.bad_cases_spec import SPEC_CASES
from tests.config.badcase import BASE, WEB, BadCase, cluster, expected_lines, write_case

__all__ = ["CASES", "BadCase", "expected_lines", "write_case"]


def _bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


READING_CASES: list[BadCase] = [
    # --- YAML syntax --------------------------------------------------------------------------
    BadCase(
        "syntax-colon-in-value",
        {"a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: sim: x\n"},
        (
            "a.yaml:4: YAML syntax error: mapping values are not allowed here; check the indentation, or "
            "quote a value that contains ': '",
        ),
    ),
    BadCase(
        "tab-indentation",
        {"a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n\tname: sim\n"},
        (
            "a.yaml:4: a tab character is used for indentation; YAML needs spaces: replace the tab with "
            "spaces",
        ),
    ),
    BadCase(
        "bad-indentation",
        {"a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n    name: sim\n  spec: {}\n"},
        (
            "a.yaml:5: YAML syntax error: expected <block end>, but found '<block mapping start>' (while "
            "parsing a block mapping at line 1); this line is indented differently from the lines around "
            "it; align it with its siblings",
        ),
    ),
    BadCase(
        "unclosed-flow-list",
        {"a.yaml": "kind: Cluster\nspec:\n  depends_on: [db, app\n  members: {}\n"},
        (
            "a.yaml:4: YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence "
            "at line 3); check the indentation and quoting on this line and the one before",
        ),
    ),
    BadCase(
        "unterminated-quote",
        {"a.yaml": "kind: Provider\nmetadata:\n  name: 'sim\nspec:\n  type: simcloud\n"},
        (
            "a.yaml:6: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar at "
            "line 3); check the indentation and quoting on this line and the one before",
        ),
    ),
    BadCase(
        "undefined-alias",
        {"a.yaml": BASE + "---\n" + cluster("    web:\n      <<: *defaults\n      template: web\n")},
        (
            "a.yaml:42: YAML syntax error: found undefined alias 'defaults'; define the anchor (&name) "
            "before using *name",
        ),
    ),
    BadCase(
        "duplicate-key",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      count: 3\n")},
        ("shop.yaml:11: duplicate key 'count' (first at line 10); keep only one of them",),
    ),
    BadCase(
        "python-tag",
        {
            "a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: "
            "!!python/object/apply:os.system "
            "['echo pwned']\nspec:\n  type: simcloud\n"
        },
        (
            "a.yaml:4: YAML tag '!!python/object/apply:os.system' is not allowed here; only plain values, "
            "lists and mappings are: remove the tag",
        ),
    ),
    BadCase(
        "custom-tag",
        {
            "a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: !Ref sim\nspec:\n"
            "  type: simcloud\n"
        },
        (
            "a.yaml:4: YAML tag '!Ref' is not allowed here; only plain values, lists and mappings are: "
            "remove the tag",
        ),
    ),
    BadCase(
        "alias-bomb",
        {"bomb.yaml": _bomb()},
        (
            "bomb.yaml:5: aliases expand to more than 10000 values (an alias bomb?); write the values out "
            "or use fewer aliases",
        ),
    ),
    BadCase(
        "recursive-alias",
        {"a.yaml": "kind: Provider\nmetadata: &m\n  name: sim\n  again: *m\n"},
        (
            "a.yaml:2: an alias refers to a node that contains it (a recursive alias); YAML here must be a "
            "tree: write the value out instead",
        ),
    ),
    BadCase(
        "deep-nesting",
        {"deep.yaml": "kind: Provider\nmetadata:\n  name: " + "[" * 5000 + "]" * 5000 + "\n"},
        ("deep.yaml:3: values are nested more than 64 levels deep; flatten them",),
    ),
    BadCase(
        "oversize-file",
        {"big.yaml": "# padding\n" + ("#" * 1023 + "\n") * 1024},
        ("big.yaml: file is larger than 1 MiB; split the desired state into several smaller files",),
    ),
    BadCase(
        "too-many-documents",
        {"many.yaml": "".join(f"--- # document {n}\n" for n in range(1, 202))},
        ("many.yaml:201: more than 200 documents in one file; split it into several files",),
    ),
    BadCase(
        "not-utf8",
        {"latin1.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: caf\udce9\n"},
        ("latin1.yaml:4: file is not valid UTF-8 (byte 0xe9); save it with UTF-8 encoding",),
    ),
    BadCase(
        "control-character",
        {"a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: sim\x07\n"},
        ("a.yaml:4: control character U+0007 is not allowed in YAML; remove it",),
    ),
    BadCase(
        "document-is-a-list",
        {"a.yaml": "- apiVersion: reconciler/v1\n- kind: Provider\n"},
        (
            "a.yaml:1: document 1 is a list, not a mapping; each document needs apiVersion, kind, metadata "
            "and spec",
        ),
    ),
    BadCase(
        "document-is-a-string",
        {"a.yaml": BASE + "---\njust some text\n"},
        (
            "a.yaml:34: document 3 is the string 'just some text', not a mapping; each document needs "
            "apiVersion, kind, metadata and spec",
        ),
    ),
    # --- the envelope -------------------------------------------------------------------------
    BadCase(
        "unknown-kind",
        {"a.yaml": "apiVersion: reconciler/v1\nkind: Clustr\nmetadata:\n  name: shop\nspec: {}\n"},
        (
            "a.yaml:2: unknown kind 'Clustr'; did you mean 'Cluster'? kinds are: AlertSink, BackupPolicy, "
            "Budget, Cluster, Console, Inputs, Policy, PriceList, Provider, ServerTemplate",
        ),
    ),
    BadCase(
        "missing-kind",
        {"a.yaml": "apiVersion: reconciler/v1\nmetadata:\n  name: shop\nspec: {}\n"},
        (
            "a.yaml:1: document 1 has no kind; add kind: one of AlertSink, BackupPolicy, Budget, Cluster, "
            "Console, Inputs, Policy, PriceList, Provider, ServerTemplate",
        ),
    ),
    BadCase(
        "wrong-api-version",
        {"a.yaml": "apiVersion: v1\nkind: Provider\nmetadata:\n  name: sim\nspec:\n  type: simcloud\n"},
        ("a.yaml:1: apiVersion must be reconciler/v1, got the string 'v1'; change it to reconciler/v1",),
    ),
    BadCase(
        "missing-metadata-name",
        {"a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {}\nspec:\n  type: simcloud\n"},
        (
            "a.yaml:3: metadata is missing the required field 'name' (the document's name, unique among "
            "documents of its kind); add it",
        ),
    ),
    BadCase(
        "bad-name",
        {
            "a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: My_Cloud\nspec:\n"
            "  type: simcloud\n"
        },
        (
            "a.yaml:4: metadata.name 'My_Cloud' is not a valid name; use lowercase letters, digits and '-', "
            "starting with a letter (at most 63 characters)",
        ),
    ),
    BadCase(
        "unknown-field-top-level",
        {
            "a.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetdata:\n  name: sim\nspec:\n  type: "
            "simcloud\n"
        },
        (
            "a.yaml:1: the document is missing the required field 'metadata'; add it",
            "a.yaml:3: unknown field 'metdata' in the document; did you mean 'metadata'?",
        ),
    ),
    BadCase(
        "duplicate-document",
        {
            "a.yaml": BASE,
            "b.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: sim\nspec:\n"
            "  type: simcloud\n",
        },
        ("b.yaml:4: duplicate Provider 'sim' (first defined at a.yaml:1); rename or remove one of them",),
    ),
    BadCase(
        "duplicate-document-same-file",
        {"a.yaml": BASE + "---\n" + BASE.split("---\n")[1]},
        (
            "a.yaml:37: duplicate ServerTemplate 'web' (first defined at line 8); rename or remove one of "
            "them",
        ),
    ),
]

CASES: list[BadCase] = READING_CASES + SPEC_CASES + SAFETY_CASES


# --- Budget ---------------------------------------------------------------------------------------
def _budget(spec: str, *, with_cluster: bool = True) -> dict[str, str]:
    """The base, a cluster 'shop' and a Budget 'cap' in budget.yaml (spec from line 6)."""
    files = {"base.yaml": BASE, "shop.yaml": cluster(WEB)} if with_cluster else {"base.yaml": BASE}
    files["budget.yaml"] = "apiVersion: reconciler/v1\nkind: Budget\nmetadata:\n  name: cap\nspec:\n" + spec
    return files


CASES += [
    BadCase(
        "budget-unknown-scope",
        _budget("  scope: shopp\n  monthly: 100\n"),
        (
            "budget.yaml:6: Budget 'cap' has scope 'shopp', which is neither 'global' nor a Cluster; "
            "did you mean 'shop'?",
        ),
    ),
    BadCase(
        "budget-monthly-not-a-number",
        _budget("  scope: shop\n  monthly: lots\n"),
        ("budget.yaml:7: spec.monthly 'lots' is not a decimal number; write it like '500.00'",),
    ),
    BadCase(
        "budget-negative",
        _budget("  scope: shop\n  monthly: -5\n"),
        ("budget.yaml:7: spec.monthly must be at least 0, got the integer -5",),
    ),
    BadCase(
        "budget-currency-lowercase",
        _budget("  scope: global\n  monthly: '100.00'\n  currency: usd\n", with_cluster=False),
        (
            "budget.yaml:8: spec.currency 'usd' is not a currency code; write three capital letters "
            "such as USD or EUR",
        ),
    ),
    BadCase(
        "budget-misspelt-monthly",
        _budget("  scope: shop\n  montly: 100\n"),
        (
            "budget.yaml:5: spec is missing the required field 'monthly' (the most a 30-day month may "
            "cost, in the budget's currency); add it",
            "budget.yaml:7: unknown field 'montly' in spec; did you mean 'monthly'?",
        ),
    ),
]


# --- prices and budgets that would be ambiguous (config.money) ------------------------------------
_DOLLARS = "apiVersion: reconciler/v1\nkind: PriceList\nmetadata: {name: dollars}\nspec:\n  currency: USD\n" \
    "  units: {vcpu_hour: '0.01'}\n"
_EUROS = "apiVersion: reconciler/v1\nkind: PriceList\nmetadata: {name: euros}\nspec:\n  currency: EUR\n" \
    "  units: {vcpu_hour: '0.02'}\n"
_EU = "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: eu}\nspec:\n  type: simcloud\n" \
    "  price_list: euros\n  state_file: eu.db\n"
_NAMED_BASE = BASE.replace("  type: simcloud\n", "  type: simcloud\n  price_list: dollars\n", 1)
_TWO_CURRENCIES = cluster(
    "    web:\n      template: web\n      count: 1\n    cafe:\n      template: web\n      count: 1\n"
    "      provider: eu\n"
)

CASES += [
    BadCase(
        "provider-names-no-price-list-among-several",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB), "prices.yaml": _DOLLARS + "---\n" + _EUROS},
        (
            "base.yaml:5: provider 'sim' names no price_list, and 2 PriceLists are declared (dollars in "
            "USD, euros in EUR): which one prices its servers is ambiguous; add price_list: NAME to its "
            "spec",
        ),
    ),
    BadCase(
        "budget-without-currency-over-two",
        {"base.yaml": _NAMED_BASE, "eu.yaml": _EU, "shop.yaml": _TWO_CURRENCIES,
         "prices.yaml": _DOLLARS + "---\n" + _EUROS,
         "budget.yaml": _budget("  scope: shop\n  monthly: 100\n")["budget.yaml"]},
        (
            "budget.yaml:7: Budget 'cap' names no currency, and cluster 'shop' is priced in EUR and USD "
            "(dollars in USD, euros in EUR): amounts in two currencies are never added; write currency: EUR "
            "(or another of them) in it, one Budget per currency",
        ),
    ),
    BadCase(
        "budget-in-a-currency-its-scope-is-not-priced-in",
        {**_budget("  scope: shop\n  monthly: 100\n  currency: EUR\n"), "prices.yaml": _DOLLARS},
        (
            "budget.yaml:8: Budget 'cap' is in EUR, but cluster 'shop' is priced in USD (dollars in USD): it "
            "could never be exceeded; write currency: USD, or price its servers in EUR",
        ),
    ),
]


# --- AlertSink and the daemon's member settings ----------------------------------------------------
def _sink(spec: str) -> dict[str, str]:
    """The base and an AlertSink 'ops' in alerts.yaml (spec from line 6)."""
    sink = "apiVersion: reconciler/v1\nkind: AlertSink\nmetadata:\n  name: ops\nspec:\n" + spec
    return {"base.yaml": BASE, "alerts.yaml": sink}


CASES += [
    BadCase(
        "alert-webhook-without-url",
        _sink("  type: webhook\n"),
        ("alerts.yaml:6: a webhook AlertSink needs spec.url; add the URL that alerts are POSTed to",),
    ),
    BadCase(
        "alert-log-with-webhook-fields",
        _sink("  type: log\n  url: https://hooks.example.com/x\n  retries: 2\n"),
        (
            "alerts.yaml:7: spec.url is only for webhook sinks; remove it or set type: webhook",
            "alerts.yaml:8: spec.retries is only for webhook sinks; remove it or set type: webhook",
        ),
    ),
    BadCase(
        "alert-url-not-http",
        _sink("  type: webhook\n  url: hooks.example.com/x\n"),
        (
            "alerts.yaml:7: spec.url 'hooks.example.com/x' is not an http:// or https:// URL; write it like "
            "https://hooks.example.com/reconciler",
        ),
    ),
    BadCase(
        "alert-unknown-event",
        _sink("  type: webhook\n  url: https://h.example.com/x\n  events: [failover, deploy]\n"),
        (
            "alerts.yaml:8: spec.events[1] must be one of apply-failed, provider-error, failover, scale, "
            "invalid-commit, backup-failed, backup-overdue, budget-exceeded, policy-denied; "
            "got the string 'deploy'",
        ),
    ),
    BadCase(
        "alert-bad-header-and-secret",
        _sink(
            "  type: webhook\n  url: https://h.example.com/x\n  headers:\n    'X Token': abc\n"
            "    Auth: {secret: ENV_TOKEN}\n"
        ),
        (
            "alerts.yaml:9: spec.headers key 'X Token' is not an HTTP header name; use letters, digits "
            "and '-'",
            "alerts.yaml:10: spec.headers.Auth.secret 'ENV_TOKEN' is not a secret reference; write env:NAME "
            "(an environment variable) or file:PATH",
        ),
    ),
    BadCase(
        "alert-timeout-and-retries-out-of-range",
        _sink("  type: webhook\n  url: https://h.example.com/x\n  timeout_seconds: 0\n  retries: 11\n"),
        (
            "alerts.yaml:8: spec.timeout_seconds must be greater than 0, got the integer 0",
            "alerts.yaml:9: spec.retries must be at most 10, got the integer 11",
        ),
    ),
    BadCase(
        "autoscale-unknown-metric",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                "    web:\n      template: web\n      autoscale: {min: 1, max: 3, metric: disk, target: 60}\n"
            ),
        },
        (
            "shop.yaml:10: spec.members.web.autoscale.metric must be one of cpu, memory, network; got the "
            "string 'disk'",
        ),
    ),
    BadCase(
        "failover-grace-and-cap-wrong",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                "    web:\n      template: web\n      count: 1\n      failover:\n        mode: replace\n"
                "        grace_seconds: -1\n        max_per_hour: many\n"
            ),
        },
        (
            "shop.yaml:13: spec.members.web.failover.grace_seconds must be at least 0, got the integer -1",
            "shop.yaml:14: spec.members.web.failover.max_per_hour must be an integer, got the string 'many'",
        ),
    ),
]
