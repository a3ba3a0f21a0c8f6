"""The sessionstore benchmark: ``make bench`` and ``make bench-peers`` (not part of the tests)."""
