"""Timed work on cases: the timer tick and what a due case's timers do."""
