"""Provider-specific tests, against real (or really simulated) backends."""
