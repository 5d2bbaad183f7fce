"""The provider conformance suite: one set of tests every provider backend must pass."""
