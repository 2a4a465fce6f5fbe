"""A case and its rules of life: lifecycle, owners, SLA clocks, accounts, case mail."""
