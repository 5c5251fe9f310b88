"""`sciserve eval`: datasets, metric formulas (DESIGN §4), a runner over HTTP, a plot."""
