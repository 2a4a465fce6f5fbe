"""The ways mail comes in: stored raw and committed before it is acknowledged."""
