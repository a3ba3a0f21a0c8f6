"""The contract suite runs on the backend matrix defined in ``tests/conftest.py``."""
