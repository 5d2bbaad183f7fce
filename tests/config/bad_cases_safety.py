"""Bad-input cases of the input-safety rules, each class with several variants.

* files that are not regular files (FIFO, socket, symbolic links leading outside the folder,
  to a FIFO, nowhere or round in a loop) and file names with control characters;
* numbers: not finite (``.inf``, ``.nan``, ``1e999``) in every kind, integers beyond 64 bits,
  the documented maxima (``reconciler.core.limits``) of sizes, counts, retention, waits, and
  webhook URLs with an impossible port or no host;
* money with more digits than exact decimals keep (3,000 digits, 10 before or after the point);
* cron schedules that never fire (30 February, 31 April);
* members whose servers would get the same names (``a`` + ``b-c`` and ``a-b`` + ``c``);
* control characters in names, keys, tags, input values and header values.
"""

from __future__ import annotations

from tests.config.badcase import BASE, WEB, BadCase, cluster

_PROVIDER = "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: sim\nspec:\n  type: simcloud\n"
_TEMPLATE = BASE.split("---\n")[1]  # the ServerTemplate 'web' alone (line 1 is apiVersion)


def _with_provider(settings: str) -> dict[str, str]:
    """BASE with provider settings after 'type: simcloud' (line 7 on)."""
    return {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n" + settings)}


def _policy(spec: str) -> dict[str, str]:
    """A BackupPolicy 'nightly' in p.yaml (spec from line 6)."""
    return {
        "p.yaml": "apiVersion: reconciler/v1\nkind: BackupPolicy\nmetadata:\n  name: nightly\nspec:\n" + spec
    }


def _prices(spec: str) -> dict[str, str]:
    """A PriceList 'standard' in p.yaml (spec from line 6, currency on line 6)."""
    return {
        "p.yaml": "apiVersion: reconciler/v1\nkind: PriceList\nmetadata:\n  name: standard\nspec:\n"
        "  currency: USD\n" + spec
    }


def _inputs(values: str) -> dict[str, str]:
    """The base and a global Inputs 'all' in inputs.yaml (values from line 8)."""
    return {
        "base.yaml": BASE,
        "inputs.yaml": "apiVersion: reconciler/v1\nkind: Inputs\nmetadata:\n  name: all\nspec:\n"
        "  scope: global\n  values:\n" + values,
    }


def _named_cluster(name: str, members: str) -> str:
    return cluster(members).replace("name: shop", f"name: {name}")


_FILES: list[BadCase] = [
    BadCase(
        "fifo-named-yaml",
        {"base.yaml": BASE},
        (
            "pipe.yaml: is a named pipe (FIFO), not a regular file; only regular files are read: remove it, "
            "or rename it so that it does not end in .yaml or .yml",
        ),
        special={"pipe.yaml": "fifo"},
    ),
    BadCase(
        "fifo-in-a-subfolder",
        {"base.yaml": BASE, "clusters/shop.yaml": cluster(WEB)},
        (
            "clusters/pipe.yml: is a named pipe (FIFO), not a regular file; only regular files are read: "
            "remove it, or rename it so that it does not end in .yaml or .yml",
        ),
        special={"clusters/pipe.yml": "fifo"},
    ),
    BadCase(
        "socket-named-yaml",
        {"base.yaml": BASE},
        (
            "control.yaml: is a socket, not a regular file; only regular files are read: remove it, or "
            "rename it so that it does not end in .yaml or .yml",
        ),
        special={"control.yaml": "socket"},
    ),
    BadCase(
        "link-to-a-fifo",
        {"base.yaml": BASE},
        (
            "shop.yaml: is a symbolic link to a named pipe (FIFO), not to a regular file; only regular files "
            "are read: remove the link, or point it at a YAML file",
        ),
        special={"pipe": "fifo", "shop.yaml": "link:pipe"},
    ),
    BadCase(
        "link-outside-the-folder",
        {"base.yaml": _PROVIDER, "../elsewhere.yaml": _TEMPLATE},
        (
            "web.yaml: is a symbolic link to a file outside the folder; links are followed only to files "
            "inside the folder: copy the file in, or point the link at a file inside the folder",
        ),
        special={"web.yaml": "link:../elsewhere.yaml"},
    ),
    BadCase(
        "link-to-a-device",
        {"base.yaml": BASE},
        (
            "zero.yaml: is a symbolic link to a file outside the folder; links are followed only to files "
            "inside the folder: copy the file in, or point the link at a file inside the folder",
        ),
        special={"zero.yaml": "link:/dev/zero"},
    ),
    BadCase(
        "dangling-link",
        {"base.yaml": BASE},
        (
            "shop.yaml: is a symbolic link that leads nowhere (its target does not exist, or the links form "
            "a "
            "loop); fix or remove the link",
        ),
        special={"shop.yaml": "link:clusters/shop.yaml"},
    ),
    BadCase(
        "link-loop",
        {"base.yaml": BASE},
        (
            "a.yaml: is a symbolic link that leads nowhere (its target does not exist, or the links form a "
            "loop); fix or remove the link",
            "b.yaml: is a symbolic link that leads nowhere (its target does not exist, or the links form a "
            "loop); fix or remove the link",
        ),
        special={"a.yaml": "link:b.yaml", "b.yaml": "link:a.yaml"},
    ),
    BadCase(
        "unreadable-entry-hides-no-reference-errors",
        {"shop.yaml": cluster(WEB)},
        (
            "base.yaml: is a named pipe (FIFO), not a regular file; only regular files are read: remove it, "
            "or rename it so that it does not end in .yaml or .yml",
        ),
        special={"base.yaml": "fifo"},
    ),
    BadCase(
        "control-character-in-a-file-name",
        {"base.yaml": BASE, "shop\x1b[31m.yaml": cluster(WEB)},
        ("shop\\x1b[31m.yaml: the file name contains the control character U+001B (ESC); rename the file",),
    ),
]

_NUMBERS: list[BadCase] = [
    BadCase(
        "infinite-latency",
        _with_provider("  latency_ms: .inf\n"),
        ("a.yaml:7: spec.latency_ms is .inf, which is not a finite number; write a number such as 0.5",),
    ),
    BadCase(
        "nan-error-rate",
        _with_provider("  error_rate: .nan\n"),
        ("a.yaml:7: spec.error_rate is .nan, which is not a finite number; write a number such as 0.5",),
    ),
    BadCase(
        "number-too-large-to-be-finite",
        _with_provider("  latency_ms: 1e999\n"),
        ("a.yaml:7: spec.latency_ms 1e999 is too large to be a number; write a smaller one",),
    ),
    BadCase(
        "negative-infinity-autoscale-target",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                "    web:\n      template: web\n      autoscale: {min: 1, max: 3, metric: cpu, target: "
                "-.Inf}\n"
            ),
        },
        (
            "shop.yaml:10: spec.members.web.autoscale.target is -.Inf, which is not a finite number; write a "
            "number such as 0.5",
        ),
    ),
    BadCase(
        "nan-backup-age",
        _policy("  schedule: '0 2 * * *'\n  retention: {keep_last: 3}\n  max_age_hours: .NaN\n"),
        ("p.yaml:8: spec.max_age_hours is .NaN, which is not a finite number; write a number such as 0.5",),
    ),
    BadCase(
        "infinite-input-value",
        _inputs("    port: .inf\n"),
        (
            "inputs.yaml:8: spec.values.port is .inf, which is not a finite number; write a number such as "
            "0.5",
        ),
    ),
    BadCase(
        "infinite-price",
        _prices("  flavors:\n    sim.small: .inf\n"),
        (
            "p.yaml:8: spec.flavors.sim.small is .inf, which is not a finite number; write a number such as "
            "0.5",
        ),
    ),
    BadCase(
        "memory-beyond-64-bits",
        {"a.yaml": BASE.replace("memory_mb: 1024", "memory_mb: 99999999999999999999")},
        (
            "a.yaml:17: spec.size.memory_mb 99999999999999999999 is out of range: integers here fit in 64 "
            "bits (-9223372036854775808 to 9223372036854775807); use a smaller number",
        ),
    ),
    BadCase(
        "seed-beyond-64-bits-in-hex",
        _with_provider("  seed: 0x1ffffffffffffffff\n"),
        (
            "a.yaml:7: spec.seed 0x1ffffffffffffffff is out of range: integers here fit in 64 bits "
            "(-9223372036854775808 to 9223372036854775807); use a smaller number",
        ),
    ),
    BadCase(
        "integer-of-five-thousand-digits",
        _inputs("    port: " + "7" * 5000 + "\n"),
        (
            "inputs.yaml:8: spec.values.port 77777777777777777777… (5000 characters) is out of range: "
            "integers "
            "here fit in 64 bits (-9223372036854775808 to 9223372036854775807); use a smaller number",
        ),
    ),
    BadCase(
        "size-above-the-maxima",
        {
            "a.yaml": BASE.replace("cpus: 1", "cpus: 1025")
            .replace("memory_mb: 1024", "memory_mb: 16777217")
            .replace("disk_gb: 10", "disk_gb: 1048577")
        },
        (
            "a.yaml:16: spec.size.cpus must be at most 1024, got the integer 1025",
            "a.yaml:17: spec.size.memory_mb must be at most 16777216, got the integer 16777217",
            "a.yaml:18: spec.size.disk_gb must be at most 1048576, got the integer 1048577",
        ),
    ),
    BadCase(
        "counts-above-the-maxima",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                WEB.replace("count: 2", "count: 1001")
                + "    app:\n      template: web\n"
                "      autoscale: {min: 1, max: 5000, metric: cpu, target: 60}\n"
            ),
        },
        (
            "shop.yaml:10: spec.members.web.count must be at most 1000, got the integer 1001",
            "shop.yaml:13: spec.members.app.autoscale.max must be at most 1000, got the integer 5000",
        ),
    ),
    BadCase(
        "waits-and-rates-above-the-maxima",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                "    web:\n      template: web\n      autoscale:\n        min: 1\n        max: 3\n"
                "        metric: network\n        target: 1e13\n        cooldown_seconds: 604801\n"
                "      failover:\n        grace_seconds: 1000000000\n        max_per_hour: 1001\n"
            ),
        },
        (
            "shop.yaml:14: spec.members.web.autoscale.target must be at most 1000000000000, got the number "
            "10000000000000.0",
            "shop.yaml:15: spec.members.web.autoscale.cooldown_seconds must be at most 604800, got the "
            "integer "
            "604801",
            "shop.yaml:17: spec.members.web.failover.grace_seconds must be at most 604800, got the integer "
            "1000000000",
            "shop.yaml:18: spec.members.web.failover.max_per_hour must be at most 1000, got the integer 1001",
        ),
    ),
    BadCase(
        "retention-and-age-above-the-maxima",
        _policy(
            "  schedule: '0 2 * * *'\n  retention:\n    keep_last: 1001\n    keep_daily: 5000\n"
            "  max_age_hours: 87601\n"
        ),
        (
            "p.yaml:8: spec.retention.keep_last must be at most 1000, got the integer 1001",
            "p.yaml:9: spec.retention.keep_daily must be at most 1000, got the integer 5000",
            "p.yaml:10: spec.max_age_hours must be at most 87600, got the integer 87601",
        ),
    ),
    BadCase(
        "max-parallel-above-the-maximum",
        _with_provider("  max_parallel: 100000\n"),
        ("a.yaml:7: spec.max_parallel must be at most 256, got the integer 100000",),
    ),
    BadCase(
        "simcloud-settings-above-their-maxima",
        _with_provider("  latency_ms: 3600000\n  page_size: 1000000\n  capacity: 100000000\n"),
        (
            "a.yaml:7: spec.latency_ms must be at most 60000, got the integer 3600000",
            "a.yaml:8: spec.page_size must be at most 100000, got the integer 1000000",
            "a.yaml:9: spec.capacity must be at most 10000000, got the integer 100000000",
        ),
    ),
]

_MONEY: list[BadCase] = [
    BadCase(
        "price-of-three-thousand-digits",
        _prices("  flavors:\n    sim.small: '" + "9" * 3000 + "'\n"),
        (
            "p.yaml:8: spec.flavors.sim.small '9999999999999999999999999999999999999999'… (3000 characters) "
            "has "
            "more than 9 digits before or after the decimal point; a rate is below 1000000000 and has at "
            "most 9 "
            "decimals",
        ),
    ),
    BadCase(
        "price-with-ten-digits-each-side",
        _prices("  units:\n    vcpu_hour: '1234567890'\n    ram_gb_hour: '0.0000000001'\n"),
        (
            "p.yaml:8: spec.units.vcpu_hour '1234567890' has more than 9 digits before or after the decimal "
            "point; a rate is below 1000000000 and has at most 9 decimals",
            "p.yaml:9: spec.units.ram_gb_hour '0.0000000001' has more than 9 digits before or after the "
            "decimal point; a rate is below 1000000000 and has at most 9 decimals",
        ),
    ),
    BadCase(
        "price-as-a-huge-number",
        _prices("  flat_monthly: 1e12\n  units:\n    disk_gb_month: 2000000000\n"),
        (
            "p.yaml:7: spec.flat_monthly must be less than 1000000000, got the number 1000000000000.0",
            "p.yaml:9: spec.units.disk_gb_month must be less than 1000000000, got the integer 2000000000",
        ),
    ),
    BadCase(
        "price-as-a-number-with-too-many-decimals",
        _prices("  flavors:\n    sim.small: 0.0000000001\n    sim.large: 1.5e-12\n"),
        (
            "p.yaml:8: spec.flavors.sim.small 1e-10 has more than 9 digits after the decimal point; write a "
            "decimal of at most 9 digits before the point and 9 after, such as '0.0416'",
            "p.yaml:9: spec.flavors.sim.large 1.5e-12 has more than 9 digits after the decimal point; write "
            "a "
            "decimal of at most 9 digits before the point and 9 after, such as '0.0416'",
        ),
    ),
    BadCase(
        "budget-of-three-thousand-digits",
        {
            "base.yaml": BASE,
            "budget.yaml": "apiVersion: reconciler/v1\nkind: Budget\nmetadata:\n  name: cap\nspec:\n"
            "  scope: global\n  monthly: '1" + "0" * 2999 + ".00'\n",
        },
        (
            "budget.yaml:7: spec.monthly '1000000000000000000000000000000000000000'… (3003 characters) has "
            "more "
            "than 9 digits before or after the decimal point; an amount is below 1000000000 and has at most "
            "9 "
            "decimals",
        ),
    ),
]

def _sink(url: str) -> dict[str, str]:
    return {
        "base.yaml": BASE,
        "alerts.yaml": "apiVersion: reconciler/v1\nkind: AlertSink\nmetadata:\n  name: ops\nspec:\n"
        f"  type: webhook\n  url: '{url}'\n",
    }


_PORTS: list[BadCase] = [
    BadCase(
        "webhook-port-beyond-65535",
        _sink("https://hooks.example.com:99999/x"),
        (
            "alerts.yaml:7: spec.url 'https://hooks.example.com:99999/x' has a port that is not a number "
            "from 1 "
            "to 65535; fix the port",
        ),
    ),
    BadCase(
        "webhook-port-not-a-number",
        _sink("https://hooks.example.com:-1/x"),
        (
            "alerts.yaml:7: spec.url 'https://hooks.example.com:-1/x' has a port that is not a number from "
            "1 to "
            "65535; fix the port",
        ),
    ),
    BadCase(
        "webhook-port-zero",
        _sink("http://hooks.example.com:0/x"),
        (
            "alerts.yaml:7: spec.url 'http://hooks.example.com:0/x' has port 0; give the port the hook "
            "listens "
            "on, from 1 to 65535",
        ),
    ),
    BadCase(
        "webhook-without-host",
        _sink("https://:8443/x"),
        (
            "alerts.yaml:7: spec.url 'https://:8443/x' names no host; write it like "
            "https://hooks.example.com/reconciler",
        ),
    ),
]

_NEVER_FIRES = (
    "never fires (no date matches it, such as 30 February or 31 April); fix the day of the month or the month"
)
_CRON: list[BadCase] = [
    BadCase(
        f"cron-never-fires-{label}",
        _policy(f"  schedule: '{schedule}'\n  retention:\n    keep_last: 3\n"),
        (f"p.yaml:6: schedule '{schedule}' {_NEVER_FIRES}",),
    )
    for label, schedule in (
        ("30-february", "0 2 30 2 *"),
        ("31-april", "0 0 31 4 *"),
        ("31st-of-short-months", "15 3 31 6,9,11 *"),
        ("end-of-february", "0 0 30-31 2 *"),
    )
]

_NAMES: list[BadCase] = [
    BadCase(
        "server-names-collide-in-one-file",
        {
            "base.yaml": BASE,
            "shop.yaml": _named_cluster("a", WEB.replace("web:", "b-c:"))
            + "---\n"
            + _named_cluster("a-b", WEB.replace("web:", "c:")),
        },
        (
            "shop.yaml:19: member a-b/c gives its servers the same names as member a/b-c (at line 8): both "
            "name "
            "their first server a-b-c-0; rename one of the clusters or members",
        ),
    ),
    BadCase(
        "server-names-collide-across-files",
        {
            "base.yaml": BASE,
            "a.yaml": cluster(WEB.replace("web:", "web-db:")),
            "b.yaml": _named_cluster("shop-web", WEB.replace("web:", "db:")),
        },
        (
            "b.yaml:8: member shop-web/db gives its servers the same names as member shop/web-db (at "
            "a.yaml:8): "
            "both name their first server shop-web-db-0; rename one of the clusters or members",
        ),
    ),
    BadCase(
        "server-names-collide-with-count-zero",
        {
            "base.yaml": BASE,
            "x.yaml": _named_cluster("x-y", WEB.replace("web:", "z:").replace("count: 2", "count: 0")),
            "y.yaml": _named_cluster("x", WEB.replace("web:", "y-z:")),
        },
        (
            "y.yaml:8: member x/y-z gives its servers the same names as member x-y/z (at x.yaml:8): both "
            "name "
            "their first server x-y-z-0; rename one of the clusters or members",
        ),
    ),
    BadCase(
        "server-names-collide-three-ways",
        {
            "base.yaml": BASE,
            "shop.yaml": _named_cluster("p", WEB.replace("web:", "q-r-s:"))
            + "---\n"
            + _named_cluster("p-q", WEB.replace("web:", "r-s:"))
            + "---\n"
            + _named_cluster(
                "p-q-r",
                "    s:\n      template: web\n      autoscale: {min: 1, max: 2, metric: cpu, target: 50}\n",
            ),
        },
        (
            "shop.yaml:19: member p-q/r-s gives its servers the same names as member p/q-r-s (at line 8): "
            "both "
            "name their first server p-q-r-s-0; rename one of the clusters or members",
            "shop.yaml:30: member p-q-r/s gives its servers the same names as member p/q-r-s (at line 8): "
            "both "
            "name their first server p-q-r-s-0; rename one of the clusters or members",
        ),
    ),
]

_CONTROL: list[BadCase] = [
    BadCase(
        "nul-in-a-name",
        {"a.yaml": BASE.replace("  name: sim\n", '  name: "sim\\0"\n')},
        (
            "a.yaml:4: metadata.name contains the control character U+0000 (NUL); remove it (only tabs and "
            "newlines may appear in a value)",
        ),
    ),
    BadCase(
        "newline-escape-in-a-name",
        {"a.yaml": BASE.replace("  name: web\n", '  name: "web\\n"\n')},
        (
            "a.yaml:11: metadata.name 'web\\n' is not a valid name; use lowercase letters, digits and '-', "
            "starting with a letter (at most 63 characters)",
        ),
    ),
    BadCase(
        "escape-in-an-input-value",
        _inputs('    tier: "small\\x1b[2J"\n'),
        (
            "inputs.yaml:8: spec.values.tier contains the control character U+001B (ESC); remove it (only "
            "tabs "
            "and newlines may appear in a value)",
        ),
    ),
    BadCase(
        "carriage-return-in-a-member-input",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + '      inputs:\n        password: "a\\rb"\n')},
        (
            "shop.yaml:12: spec.members.web.inputs.password contains the control character U+000D (carriage "
            "return); remove it (only tabs and newlines may appear in a value)",
        ),
    ),
    BadCase(
        "c1-control-in-a-tag",
        {"a.yaml": BASE + '  tags:\n    role: "web\\x9b1m"\n'},
        (
            "a.yaml:34: spec.tags.role contains the control character U+009B; remove it (only tabs and "
            "newlines "
            "may appear in a value)",
        ),
    ),
    BadCase(
        "newline-and-tab-in-tags-and-image",
        {
            "a.yaml": BASE.replace("simcloud: debian-12", 'simcloud: "debian\\t12"')
            + '  tags:\n    role: "web\\nrole: db"\n'
        },
        (
            "a.yaml:14: spec.image.simcloud 'debian\\t12' holds a tab, a newline or another control "
            "character; "
            "write it on one line",
            "a.yaml:34: spec.tags.role 'web\\nrole: db' holds a tab, a newline or another control character; "
            "write it on one line",
        ),
    ),
    BadCase(
        "delete-character-in-a-flavor",
        {"a.yaml": BASE.replace("  inputs:\n", '  flavor:\n    simcloud: "sim.small\\x7f"\n  inputs:\n', 1)},
        (
            "a.yaml:20: spec.flavor.simcloud contains the control character U+007F (DEL); remove it (only "
            "tabs "
            "and newlines may appear in a value)",
        ),
    ),
    BadCase(
        "nul-in-a-key",
        {"a.yaml": BASE + '  tags:\n    "ro\\0le": web\n'},
        (
            "a.yaml:34: key 'ro\\x00le' in spec.tags contains the control character U+0000 (NUL); remove it "
            "(a "
            "key is one plain word)",
        ),
    ),
    BadCase(
        "tab-in-a-key",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + '      inputs:\n        "port\\t": 80\n')},
        (
            "shop.yaml:12: key 'port\\t' in spec.members.web.inputs contains the control character U+0009 "
            "(tab); "
            "remove it (a key is one plain word)",
        ),
    ),
    BadCase(
        "newline-in-a-webhook-header",
        {
            "base.yaml": BASE,
            "alerts.yaml": "apiVersion: reconciler/v1\nkind: AlertSink\nmetadata:\n  name: ops\nspec:\n"
            "  type: webhook\n  url: https://h.example.com/x\n  headers:\n"
            '    X-Token: "abc\\nX-Admin: yes"\n',
        },
        (
            "alerts.yaml:9: spec.headers.X-Token 'abc\\nX-Admin: yes' holds a tab, a newline or another "
            "control "
            "character; write it on one line",
        ),
    ),
    BadCase(
        "raw-escape-in-a-script",
        {"a.yaml": BASE.replace("echo {{ port }} {{ tier }}", "echo {{ port }}\x1b[2J")},
        ("a.yaml:32: control character U+001B is not allowed in YAML; remove it",),
    ),
]

SAFETY_CASES: list[BadCase] = _FILES + _NUMBERS + _PORTS + _MONEY + _CRON + _NAMES + _CONTROL
