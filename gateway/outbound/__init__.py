"""Everything that leaves: rendering, composing, the stored outbox and its sender."""
