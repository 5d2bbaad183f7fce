"""Tests for the ledger store."""
