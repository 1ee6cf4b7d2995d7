"""`python -m promptci`."""

from promptci.cli import main

main()
