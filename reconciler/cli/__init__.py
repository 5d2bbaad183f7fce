"""reconciler.cli: the ``reconciler`` command — argument parsing, command handlers and renderers."""
