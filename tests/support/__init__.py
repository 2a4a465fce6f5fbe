"""Helpers that run real external services for the test suite."""
