"""Engine tests: diff, graph and plan rendering, with golden files."""
