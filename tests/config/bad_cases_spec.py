"""Bad-input cases past YAML reading: schema, references, inputs, scripts, policies, prices."""

from __future__ import annotations

from tests.config.badcase import BASE, WEB, BadCase, cluster

NOT_A_FILE_NAME = (
    "is not a plain file name in the state directory; write a name like simcloud.db (letters, digits, "
    "'.', '_' and '-', not starting with '.', ending in .db)"
)

_BOOT = "echo {{ port }} {{ tier }}"  # the boot script of BASE, on line 32


def _boot(text: str, inputs: str = "") -> dict[str, str]:
    """BASE with ``text`` for its boot script (from line 32; ``inputs`` declared after 'password'),
    and a Cluster that puts two servers on it, so that the script is rendered too."""
    base = BASE.replace("      sensitive: true\n", "      sensitive: true\n" + inputs).replace(_BOOT, text)
    return {"a.yaml": base, "shop.yaml": cluster(WEB)}


def _aws(script_bytes: int) -> dict[str, str]:
    """An EC2 provider and a template whose boot script renders to ``script_bytes`` bytes."""
    comment = "x" * (script_bytes - len("#!/bin/sh\n# \n"))
    return {
        "p.yaml": "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: ec2\nspec:\n  type: aws\n"
        "  region: us-east-1\n",
        "t.yaml": "apiVersion: reconciler/v1\nkind: ServerTemplate\nmetadata:\n  name: web\nspec:\n"
        "  image: {aws: ami-0a1b2c3d4e5f60718}\n  flavor: {aws: t3.micro}\n"
        "  size: {cpus: 1, memory_mb: 1024, disk_gb: 10}\n  scripts:\n    boot: |\n"
        f"      #!/bin/sh\n      # {comment}\n",
        "shop.yaml": cluster(WEB, head="  provider: ec2\n"),
    }


SPEC_CASES: list[BadCase] = [
    # --- schema: unknown fields at several levels, wrong types, bounds ------------------------
    BadCase(
        "unknown-field-in-spec",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB, head="  provider: sim\n  dependson: [other]\n")},
        ("shop.yaml:7: unknown field 'dependson' in spec; did you mean 'depends_on'?",),
    ),
    BadCase(
        "unknown-field-in-member",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      protected: true\n")},
        ("shop.yaml:11: unknown field 'protected' in spec.members.web; did you mean 'protect'?",),
    ),
    BadCase(
        "unknown-field-in-size",
        {"a.yaml": BASE.replace("    memory_mb: 1024", "    memory: 1024")},
        (
            "a.yaml:15: spec.size is missing the required field 'memory_mb' (memory in MB); add it",
            "a.yaml:17: unknown field 'memory' in spec.size; did you mean 'memory_mb'?",
        ),
    ),
    BadCase(
        "unknown-field-in-update-policy",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      update:\n        strategie: replace\n")},
        ("shop.yaml:12: unknown field 'strategie' in spec.members.web.update; did you mean 'strategy'?",),
    ),
    BadCase(
        "unknown-field-in-provider-settings",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  latncy_ms: 20\n")},
        ("a.yaml:7: unknown field 'latncy_ms' in spec; did you mean 'latency_ms'?",),
    ),
    BadCase(
        "count-not-a-number",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB.replace("count: 2", "count: three"))},
        ("shop.yaml:10: spec.members.web.count must be an integer, got the string 'three'",),
    ),
    BadCase(
        "count-quoted",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB.replace("count: 2", 'count: "2"'))},
        ("shop.yaml:10: spec.members.web.count must be an integer, got the string '2'; remove the quotes",),
    ),
    BadCase(
        "negative-count",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB.replace("count: 2", "count: -1"))},
        ("shop.yaml:10: spec.members.web.count must be at least 0, got the integer -1",),
    ),
    BadCase(
        "boolean-for-integer",
        {"a.yaml": BASE.replace("cpus: 1", "cpus: true")},
        ("a.yaml:16: spec.size.cpus must be an integer, got the boolean true",),
    ),
    BadCase(
        "empty-members",
        {"base.yaml": BASE, "shop.yaml": cluster("")},
        ("shop.yaml:7: spec.members must be a mapping, got an empty value",),
    ),
    BadCase(
        "count-and-autoscale",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(WEB + "      autoscale: {min: 1, max: 4, metric: cpu, target: 60}\n"),
        },
        (
            "shop.yaml:8: spec.members.web needs exactly one of count (a fixed number of servers) or "
            "autoscale (a range): set one, not both",
        ),
    ),
    BadCase(
        "autoscale-min-above-max",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                "    web:\n      template: web\n      autoscale:\n        min: 5\n        max: 2\n        "
                "metric: cpu\n        target: 60\n"
            ),
        },
        ("shop.yaml:11: spec.members.web.autoscale has min 5 above max 2; make min at most max",),
    ),
    BadCase(
        "enum-typo",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      drift: heel\n")},
        (
            "shop.yaml:11: spec.members.web.drift must be one of heal, warn, ignore; got the string 'heel' "
            "(did you mean 'heal'?)",
        ),
    ),
    # --- simcloud's state_file: a plain file name in the state directory, never the ledger's ----
    BadCase(
        "simcloud-state-file-absolute",  # a path outside the state directory
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: /srv/x.db\n")},
        ("a.yaml:7: spec.state_file '/srv/x.db' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-parent",  # climbs out of the state directory
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: ../../x.db\n")},
        ("a.yaml:7: spec.state_file '../../x.db' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-dot-dot",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: ..\n")},
        ("a.yaml:7: spec.state_file '..' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-subdirectory",  # a path, even one inside the state directory
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: worlds/alt.db\n")},
        ("a.yaml:7: spec.state_file 'worlds/alt.db' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-backslash",  # the separator of other systems
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: 'worlds\\alt.db'\n")},
        ("a.yaml:7: spec.state_file 'worlds\\\\alt.db' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-hidden",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: .sim.db\n")},
        ("a.yaml:7: spec.state_file '.sim.db' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-empty",
        {"a.yaml": BASE.replace("  type: simcloud\n", '  type: simcloud\n  state_file: ""\n')},
        ("a.yaml:7: spec.state_file '' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-nul",  # a NUL would cut the name short
        {"a.yaml": BASE.replace("  type: simcloud\n", '  type: simcloud\n  state_file: "sim\\0.db"\n')},
        (  # the YAML-level rule on control characters speaks first
            "a.yaml:7: spec.state_file contains the control character U+0000 (NUL); remove it "
            "(only tabs and newlines may appear in a value)",
        ),
    ),
    BadCase(
        "simcloud-state-file-newline",  # Python's '$' alone matches before a final newline
        {"a.yaml": BASE.replace("  type: simcloud\n", '  type: simcloud\n  state_file: "sim.db\\n"\n')},
        ("a.yaml:7: spec.state_file 'sim.db\\n' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-not-db",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: sim.sqlite\n")},
        ("a.yaml:7: spec.state_file 'sim.sqlite' " + NOT_A_FILE_NAME,),
    ),
    BadCase(
        "simcloud-state-file-is-the-ledger",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: state.db\n")},
        ("a.yaml:7: spec.state_file 'state.db' is the reconciler's own ledger file; choose another name, "
         "like simcloud.db",),
    ),
    BadCase(
        "simcloud-state-file-is-the-ledger-in-other-case",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: State.db\n")},
        ("a.yaml:7: spec.state_file 'State.db' is the reconciler's own ledger file; choose another name, "
         "like simcloud.db",),
    ),
    BadCase(
        "simcloud-state-file-not-a-string",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  state_file: 7\n")},
        ("a.yaml:7: spec.state_file must be a string, got the integer 7",),
    ),
    BadCase(
        "max-parallel-zero",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  max_parallel: 0\n")},
        ("a.yaml:7: spec.max_parallel must be at least 1, got the integer 0",),
    ),
    BadCase(
        "member-name-invalid",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB.replace("    web:", "    Web_Tier:"))},
        (
            "shop.yaml:8: spec.members key 'Web_Tier' is not a valid name; use lowercase letters, digits "
            "and '-', starting with a letter (at most 63 characters)",
        ),
    ),
    BadCase(
        "input-name-reserved",
        {"a.yaml": BASE.replace("    password:", "    server:")},
        ("a.yaml:27: spec.inputs key 'server' is reserved in scripts; choose another input name",),
    ),
    BadCase(
        "reserved-tag-key",
        {"a.yaml": BASE + "  tags:\n    reconciler:owner: me\n"},
        (
            "a.yaml:34: spec.tags key 'reconciler:owner' is not a usable tag key; use letters, digits and "
            "_.:/=+@- (keys starting with reconciler: are reserved)",
        ),
    ),
    # --- references -------------------------------------------------------------------------
    BadCase(
        "unknown-template",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB.replace("template: web", "template: nginx"))},
        (
            "shop.yaml:9: member shop/web names ServerTemplate 'nginx', which is not defined; define a "
            "ServerTemplate named 'nginx' or fix the name",
        ),
    ),
    BadCase(
        "unknown-provider",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB, head="  provider: simm\n")},
        ("shop.yaml:6: cluster 'shop' names Provider 'simm', which is not defined; did you mean 'sim'?",),
    ),
    BadCase(
        "unknown-backup-policy",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      backup_policy: nightly\n")},
        (
            "shop.yaml:11: member shop/web names BackupPolicy 'nightly', which is not defined; define a "
            "BackupPolicy named 'nightly' or fix the name",
        ),
    ),
    BadCase(
        "unknown-price-list",
        {"a.yaml": BASE.replace("  type: simcloud\n", "  type: simcloud\n  price_list: cheap\n")},
        (
            "a.yaml:7: provider 'sim' names PriceList 'cheap', which is not defined; define a PriceList "
            "named 'cheap' or fix the name",
        ),
    ),
    BadCase(
        "unknown-provider-type",
        {"a.yaml": BASE.replace("type: simcloud", "type: simcloudd")},
        (
            "a.yaml:6: spec.type must be one of aws, libvirt, openstack, simcloud, xcp; got the string "
            "'simcloudd' (did you mean 'simcloud'?)",
        ),
    ),
    BadCase(
        "template-without-image-for-type",
        {
            "a.yaml": BASE.replace("    simcloud: debian-12", "    aws: ami-0123456789abcdef0"),
            "shop.yaml": cluster(WEB),
        },
        (
            "a.yaml:13: template 'web' has no image for provider type 'simcloud' (used by shop/web); add "
            "spec.image.simcloud",
        ),
    ),
    BadCase(
        "image-for-unknown-type",
        {"a.yaml": BASE.replace("    simcloud: debian-12", "    simcloud: debian-12\n    awss: ami-1")},
        ("a.yaml:15: spec.image names unknown provider type 'awss'; did you mean 'aws'?",),
    ),
    BadCase(
        "depends-on-unknown-member",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      depends_on: [dbb]\n")},
        (
            "shop.yaml:11: member shop/web depends on 'dbb', which is neither a member of cluster 'shop' "
            "nor a cluster; fix the name or remove it",
        ),
    ),
    BadCase(
        "depends-on-unknown-cluster-member",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      depends_on:\n        - shop/wbe\n")},
        (
            "shop.yaml:12: member shop/web depends on 'shop/wbe', but cluster 'shop' has no member 'wbe'; "
            "did you mean 'web'?",
        ),
    ),
    BadCase(
        "dependency-cycle",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                "    app:\n      template: web\n      count: 1\n      depends_on: [db]\n    db:\n      "
                "template: web\n      count: 1\n      depends_on: [app]\n"
            ),
        },
        (
            "shop.yaml:11: dependency cycle: shop/app -> shop/db -> shop/app; remove one of these "
            "depends_on entries",
        ),
    ),
    BadCase(
        "cluster-dependency-cycle",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(WEB, head="  provider: sim\n  depends_on: [billing]\n"),
            "billing.yaml": cluster(WEB, head="  provider: sim\n  depends_on: [shop]\n").replace(
                "name: shop", "name: billing"
            ),
        },
        (
            "billing.yaml:7: dependency cycle: billing/web -> shop/web -> billing/web; remove one of these "
            "depends_on entries",
        ),
    ),
    # --- inputs -------------------------------------------------------------------------------
    BadCase(
        "undeclared-input",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        prot: 80\n")},
        (
            "shop.yaml:12: input 'prot' is not declared by template 'web'; did you mean 'port'? declare it "
            "under spec.inputs or remove it",
        ),
    ),
    BadCase(
        "missing-required-input",
        {
            "a.yaml": BASE.replace("      sensitive: true", "      sensitive: true\n      required: true"),
            "shop.yaml": cluster(WEB),
        },
        (
            "shop.yaml:8: member shop/web needs a value for input 'password' (required by template 'web'); "
            "set it under the member's inputs or in an Inputs document",
        ),
    ),
    BadCase(
        "input-wrong-type",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        port: eighty\n")},
        ("shop.yaml:12: input 'port' of template 'web' must be an integer, got the string 'eighty'",),
    ),
    BadCase(
        "input-boolean-is-not-integer",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        port: true\n")},
        ("shop.yaml:12: input 'port' of template 'web' must be an integer, got the boolean true",),
    ),
    BadCase(
        "input-not-allowed",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        tier: huge\n")},
        ("shop.yaml:12: input 'tier' of template 'web' must be one of small, large; got the string 'huge'",),
    ),
    BadCase(
        "secret-for-integer-input",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        port: {secret: env:PORT}\n")},
        (
            "shop.yaml:12: input 'port' of template 'web' must be an integer; a secret reference can only "
            "be given for a string input",
        ),
    ),
    BadCase(
        "bad-secret-reference",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(WEB + "      inputs:\n        password: {secret: vault:db}\n"),
        },
        (
            "shop.yaml:12: spec.members.web.inputs.password.secret 'vault:db' is not a secret reference; "
            "write env:NAME (an environment variable) or file:PATH",
        ),
    ),
    BadCase(
        "secret-reference-typo",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        password: {secrt: env:DB}\n")},
        (
            "shop.yaml:12: spec.members.web.inputs.password is missing the required field 'secret' "
            "(env:NAME for an environment variable, or file:PATH for a file relative to the YAML file "
            "naming it); add it",
            "shop.yaml:12: unknown field 'secrt' in spec.members.web.inputs.password; did you mean 'secret'?",
        ),
    ),
    BadCase(
        "input-value-is-a-list",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB + "      inputs:\n        tier: [small]\n")},
        (
            "shop.yaml:12: spec.members.web.inputs.tier must be a plain value (a string, number or boolean) "
            "or a secret reference such as {secret: env:DB_PASSWORD}",
        ),
    ),
    BadCase(
        "default-of-wrong-type",
        {"a.yaml": BASE.replace("default: 8080", "default: http")},
        ("a.yaml:22: default of input 'port' must be an integer, got the string 'http'",),
    ),
    BadCase(
        "inputs-scope-unknown",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(WEB),
            "inputs.yaml": "apiVersion: reconciler/v1\nkind: Inputs\nmetadata:\n  name: shop\nspec:\n"
            "  scope: shoop\n  values:\n    port: 80\n",
        },
        (
            "inputs.yaml:6: Inputs 'shop' has scope 'shoop', which is neither 'global' nor a Cluster; did "
            "you mean 'shop'?",
        ),
    ),
    BadCase(
        "inputs-value-nobody-declares",
        {
            "base.yaml": BASE,
            "inputs.yaml": "apiVersion: reconciler/v1\nkind: Inputs\nmetadata:\n  name: all\nspec:\n"
            "  scope: global\n  values:\n    tire: large\n",
        },
        ("inputs.yaml:8: input 'tire' is not declared by any template; did you mean 'tier'?",),
    ),
    BadCase(
        "input-set-twice-in-scope",
        {
            "base.yaml": BASE,
            "inputs.yaml": "apiVersion: reconciler/v1\nkind: Inputs\nmetadata:\n  name: one\nspec:\n"
            "  scope: global\n  values:\n    port: 80\n---\napiVersion: reconciler/v1\nkind: "
            "Inputs\nmetadata:\n  name: two\nspec:\n  scope: global\n  values:\n    port: 81\n",
        },
        (
            "inputs.yaml:17: input 'port' is already set for scope global (at line 8); set it in one place "
            "only",
        ),
    ),
    # --- scripts ------------------------------------------------------------------------------
    BadCase(
        "script-uses-undeclared-input",
        {"a.yaml": BASE.replace("echo {{ port }} {{ tier }}", "echo {{ port }}\n      echo {{ teir }}")},
        (
            "a.yaml:33: boot script 'boot' uses {{ teir }}, which is not a declared input; declare it under "
            "spec.inputs (did you mean 'tier'?)",
        ),
    ),
    BadCase(
        "script-value-inside-double-quotes",
        {"a.yaml": BASE.replace("echo {{ port }} {{ tier }}", 'echo "listening on {{ port }}"')},
        (
            "a.yaml:32: boot script 'boot' inserts {{ port }} inside double quotes, where shell quoting "
            "does not "
            'protect it; assign it to a variable first (VALUE={{ port }}) and use "$VALUE" there',
        ),
    ),
    BadCase(
        "script-jinja-syntax-error",
        {
            "a.yaml": BASE.replace(
                "echo {{ port }} {{ tier }}", "echo {{ port }}\n      {% if tier %}\n      echo big"
            )
        },
        (
            "a.yaml:34: boot script 'boot' has a Jinja2 syntax error: Unexpected end of template. Jinja was "
            "looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to "
            "be closed is 'if'; fix the template",
        ),
    ),
    # --- scripts: the sandbox and its limits (checked when loading, or rendered for every server) --
    BadCase(
        "script-include",
        _boot("{% include 'common.sh' %}"),
        (
            "a.yaml:32: boot script 'boot' uses {% include %}, which scripts cannot: they render on their "
            "own, with no other templates to load; write the shell code into this script (or into another "
            "script of the template)",
        ),
    ),
    BadCase(
        "script-from-import",
        _boot("echo {{ port }}\n      {% from 'lib.sh' import helper %}"),
        (
            "a.yaml:33: boot script 'boot' uses {% from ... import %}, which scripts cannot: they render on "
            "their own, with no other templates to load; write the shell code into this script (or into "
            "another script of the template)",
        ),
    ),
    BadCase(
        "script-extends",
        _boot("{% extends 'base.sh' %}"),
        (
            "a.yaml:32: boot script 'boot' uses {% extends %}, which scripts cannot: they render on their "
            "own, with no other templates to load; write the shell code into this script (or into another "
            "script of the template)",
        ),
    ),
    BadCase(
        "script-python-internals",
        _boot("echo {{ port.__class__.__mro__ }}\n      echo {{ tier|attr('__globals__') }}"),
        (
            "a.yaml:32: boot script 'boot' reads '__mro__', which the sandbox refuses: names starting with "
            "'_' reach into Python; use the inputs and server fields only",
            "a.yaml:32: boot script 'boot' reads '__class__', which the sandbox refuses: names starting with "
            "'_' reach into Python; use the inputs and server fields only",
            "a.yaml:33: boot script 'boot' reads '__globals__', which the sandbox refuses: names starting "
            "with '_' reach into Python; use the inputs and server fields only",
        ),
    ),
    BadCase(
        "script-internals-from-an-input",
        _boot(
            "echo {{ tier }}\n      echo {{ tier|attr(field) }}",
            "    field: {type: string, default: __init__}\n",
        ),
        (
            "a.yaml:34: script boot/boot of template 'web' cannot be rendered for shop/web/0: it reads "
            "'__init__', which the sandbox refuses: names starting with '_' and methods that change a list, "
            "dict or set are off-limits; use the inputs and server fields only",
        ),
    ),
    BadCase(
        "script-unknown-filter",
        _boot("echo {{ tier|shout }}"),
        (
            "a.yaml:32: boot script 'boot' has a Jinja2 syntax error: No filter named 'shout'; fix the "
            "template",
        ),
    ),
    BadCase(
        "script-nested-too-deep",
        _boot("echo {{ " + "(" * 400 + "1" + ")" * 400 + " }}"),
        (
            "a.yaml:32: boot script 'boot' nests expressions too deeply for Jinja2 to read; split them up "
            "with {% set %}",
        ),
    ),
    BadCase(
        "script-recursive-macro",
        _boot("{% macro up(n) %}{{ up(n + 1) }}{% endmacro %}\n      echo {{ up(port) }}"),
        (
            "a.yaml:32: script boot/boot of template 'web' cannot be rendered for shop/web/0: it nests calls "
            "more than 32 deep (a macro that calls itself without end?); make the recursion stop sooner",
        ),
    ),
    BadCase(
        "script-endless-loops",
        _boot(
            "echo {{ port }}\n      {% for i in range(10000) %}\n      {% for j in range(10000) %}\n"
            "      {% endfor %}\n      {% endfor %}"
        ),
        (
            "a.yaml:34: script boot/boot of template 'web' cannot be rendered for shop/web/0: it takes more "
            "than 200000 steps (loop iterations, calls, filters and operators); loop over fewer items or "
            "simplify the script",
        ),
    ),
    BadCase(
        "script-string-bomb",
        _boot("echo {{ tier }}\n      echo {{ 'x' * 1000000000 }}"),
        (
            "a.yaml:33: script boot/boot of template 'web' cannot be rendered for shop/web/0: it uses the * "
            "operator to make about 1000000000 characters, more than the 1000000 that one value of a script "
            "may hold; make it smaller",
        ),
    ),
    BadCase(
        "script-range-too-long",
        _boot("{% for i in range(port * 1000) %}{{ i }}{% endfor %}"),
        (
            "a.yaml:32: script boot/boot of template 'web' cannot be rendered for shop/web/0: it asks for a "
            "range of 8080000 items, more than the 10000 a script may; loop over fewer",
        ),
    ),
    BadCase(
        "script-output-too-long",
        _boot("{% for i in range(5000) %}\n      echo {{ i }} " + "y" * 300 + "\n      {% endfor %}"),
        (
            "a.yaml:32: script boot/boot of template 'web' cannot be rendered for shop/web/0: it renders "
            "more than 1000000 characters; make the script shorter",
        ),
    ),
    BadCase(
        "script-fails-for-one-member-input",
        {
            "a.yaml": BASE.replace(_BOOT, "echo {{ 100 // (port - 8080) }}"),
            "shop.yaml": cluster(WEB + "      inputs: {port: 8080}\n"),
        },
        (
            "a.yaml:32: script boot/boot of template 'web' cannot be rendered for shop/web/0: it divides by "
            "zero; check the divisor",
        ),
    ),
    BadCase(
        "user-data-over-the-ec2-limit",
        _aws(16385),
        (
            "shop.yaml:8: the boot scripts of shop/web/0 (template 'web') render to 16385 bytes of user "
            "data, more than the 16384 that provider 'ec2' (aws) accepts; make them shorter, or have them "
            "fetch the rest when the server boots",
        ),
    ),
    # --- policies and prices ------------------------------------------------------------------
    BadCase(
        "bad-cron",
        {
            "p.yaml": "apiVersion: reconciler/v1\nkind: BackupPolicy\nmetadata:\n  name: nightly\nspec:\n"
            "  schedule: '0 25 * * *'\n  retention:\n    keep_last: 3\n"
        },
        (
            "p.yaml:6: schedule '0 25 * * *' is not a valid cron expression; write five fields (minute hour "
            "day-of-month month day-of-week), e.g. '0 2 * * *' for 02:00 daily",
        ),
    ),
    BadCase(
        "retention-keeps-nothing",
        {
            "p.yaml": "apiVersion: reconciler/v1\nkind: BackupPolicy\nmetadata:\n  name: nightly\nspec:\n"
            "  schedule: '0 2 * * *'\n  retention:\n    keep_last: 0\n"
        },
        ("p.yaml:7: retention keeps no backup at all; set keep_last (or another keep_*) to 1 or more",),
    ),
    BadCase(
        "currency-lowercase",
        {
            "p.yaml": "apiVersion: reconciler/v1\nkind: PriceList\nmetadata:\n  name: standard\nspec:\n"
            "  currency: usd\n"
        },
        (
            "p.yaml:6: spec.currency 'usd' is not a currency code; write three capital letters such as USD "
            "or EUR",
        ),
    ),
    BadCase(
        "bad-rates",
        {
            "p.yaml": "apiVersion: reconciler/v1\nkind: PriceList\nmetadata:\n  name: standard\nspec:\n"
            "  currency: USD\n  flavors:\n    sim.small: -0.01\n  units:\n    vcpu_hour: 1,5\n"
        },
        (
            "p.yaml:8: spec.flavors.sim.small must be at least 0, got the number -0.01",
            "p.yaml:10: spec.units.vcpu_hour '1,5' is not a decimal number; write it like '0.0416'",
        ),
    ),
    BadCase(
        "cluster-named-global",
        {"base.yaml": BASE, "shop.yaml": cluster(WEB).replace("name: shop", "name: global")},
        (
            "shop.yaml:4: a Cluster cannot be named 'global' (Inputs use it for every cluster); choose "
            "another name",
        ),
    ),
    # --- several problems at once ---------------------------------------------------------------
    BadCase(
        "several-errors-together",
        {
            "base.yaml": BASE,
            "broken.yaml": "kind: Provider\nmetadata:\n  name: [\n",
            "shop.yaml": cluster(WEB.replace("count: 2", "count: -2") + "      drift: never\n"),
        },
        (
            "broken.yaml:4: YAML syntax error: expected the node content, but found '<stream end>' (while "
            "parsing a flow node); check the indentation and quoting on this line and the one before",
            "shop.yaml:10: spec.members.web.count must be at least 0, got the integer -2",
            "shop.yaml:11: spec.members.web.drift must be one of heal, warn, ignore; got the string 'never'",
        ),
    ),
    BadCase(
        "errors-in-several-documents",
        {
            "base.yaml": BASE,
            "shop.yaml": cluster(
                WEB + "      inputs:\n        port: x\n        tier: huge\n      backup_policy: weekly\n"
            ),
        },
        (
            "shop.yaml:12: input 'port' of template 'web' must be an integer, got the string 'x'",
            "shop.yaml:13: input 'tier' of template 'web' must be one of small, large; got the string 'huge'",
            "shop.yaml:14: member shop/web names BackupPolicy 'weekly', which is not defined; define a "
            "BackupPolicy named 'weekly' or fix the name",
        ),
    ),
]
