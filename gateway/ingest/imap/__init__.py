"""Watching IMAP folders."""
