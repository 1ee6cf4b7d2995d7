"""`python -m promptci.cli`."""

from promptci.cli import main

main()
