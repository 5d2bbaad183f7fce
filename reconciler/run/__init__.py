"""reconciler.run: the pipeline as steps over one provider session — observe, settle, plan, apply, verify.

Everything here talks to clouds only through ``reconciler.core.provider``'s registry and to
ledgers only through ``reconciler.store``; the CLI, the daemon, backups and billing are
callers of these steps.
"""
