"""Tests of backup policies: schedules, retention, quiesce, failures, final backups, restore."""
