"""Generation providers: one interface per step, local (offline) and cloud implementations."""
