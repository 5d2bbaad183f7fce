"""Tests for the reconciler."""
