"""Seeded hostile-input campaigns against knscale's own entry points (`make fuzz`)."""
