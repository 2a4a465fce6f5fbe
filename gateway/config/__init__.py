"""Typed configuration: sections, rule kinds, defaults and loading."""
