"""reconciler.core: values and pure decisions — nothing here performs I/O or imports another layer.

The model and its keys, the typed errors, the clock, the diff, the dependency graph and its
generic walker, the plan's types and codec, pricing and budgets, backup rules, the ledgers'
record types, and the provider protocol with its registry.
"""
