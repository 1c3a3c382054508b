"""`python -m meterhub.cli`."""

from meterhub.cli.main import main

main()
