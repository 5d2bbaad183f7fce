"""Tests of the audit ledger's typed details: the codec, and the details a run writes."""
