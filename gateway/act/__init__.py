"""Applying a Decision: open, upgrade, attach, and what a reply means for its case."""
