"""The processing worker, as a thread or as child processes."""
