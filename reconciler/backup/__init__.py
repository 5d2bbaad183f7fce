"""reconciler.backup: backups as reconciles of their own — ``backup run``, ``list``, ``delete``, ``restore``.
"""
