"""Worker side: engines, the solve pipeline and the loop that claims jobs."""
