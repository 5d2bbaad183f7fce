"""store: ledgers and leases behind one interface (SQLite by default)."""
