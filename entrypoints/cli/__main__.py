"""`python -m entrypoints.cli`, as the `sciserve` script."""

from entrypoints.cli import main

main()
