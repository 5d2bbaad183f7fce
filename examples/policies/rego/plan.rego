# A reviewer's rules over a reconciler plan, for OPA or conftest.
#
# The input is the JSON that `reconciler plan --format json` writes; its shape is published in
# schemas/plan.json (stable within format_version 2). Decide on the closed sets — a change's
# action and cause, a violation's enforcement — never on the text fields kept for people.
#
#   conftest test --policy examples/policies/rego examples/policies/rego/input.json
#   opa eval --format pretty -d examples/policies/rego -i examples/policies/rego/input.json data.main
#
# The expected decision for input.json is in decision.json (see examples/policies/README.md).
package main

import rego.v1

max_deletes := 1

removed := [change.key |
	some change in input.changes
	change.action in {"delete", "replace"}
]

# Deny: a plan that deletes or replaces more servers than a reviewer signs off at once.
deny contains msg if {
	count(removed) > max_deletes
	msg := sprintf(
		"the plan deletes or replaces %d servers (%s); at most %d per plan",
		[count(removed), concat(", ", removed), max_deletes],
	)
}

# Deny: whatever the reconciler's own deny policies deny (apply refuses such a plan anyway).
deny contains msg if {
	some violation in input.violations
	violation.enforcement == "deny"
	msg := sprintf("%s:%d: policy %s, rule %s: %s", [
		violation.file, violation.line, violation.policy, violation.rule, violation.message,
	])
}

# Deny: never delete a server that carries the protect mark.
deny contains msg if {
	some change in input.changes
	change.action in {"delete", "replace"}
	change.before.protected
	msg := sprintf("%s carries the protect mark", [change.key])
}

# Warn: the reconciler's warn policies, and a plan that makes the month dearer.
warn contains msg if {
	some violation in input.violations
	violation.enforcement == "warn"
	msg := sprintf("%s:%d: policy %s, rule %s: %s", [
		violation.file, violation.line, violation.policy, violation.rule, violation.message,
	])
}

warn contains msg if {
	to_number(input.cost.delta_monthly) > 0
	msg := sprintf("the plan adds %s %s per 30-day month", [input.cost.delta_monthly, input.cost.currency])
}
