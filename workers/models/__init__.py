"""Models sciserve can build or assemble offline: the tiny test model and the demo model."""
