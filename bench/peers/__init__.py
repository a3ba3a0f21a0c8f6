"""Peer systems benchmarked side by side with sessionstore, each in its own venv."""
