"""How a run is configured: its options declared once, presets, and the composition that resolves names and checks the config once."""
