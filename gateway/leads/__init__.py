"""Leads steering cases by email: who may, the command table, applying a reply."""
