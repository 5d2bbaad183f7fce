"""reconciler.billing: usage reports from the ledger — instance-hours, measured use, backup storage.
"""
