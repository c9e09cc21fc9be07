"""Point-in-time features: pure functions of (transactions, events, cutoff)."""
