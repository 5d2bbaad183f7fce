"""reconciler: a GitOps infrastructure reconciler.

Desired state (YAML) is diffed against what each cloud really runs; the resulting
plan is applied through providers, and every step lands in an audit and a usage ledger.
"""

__version__ = "0.1.0"
