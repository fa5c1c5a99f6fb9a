"""`python -m diamond_db`: the diamond-db command line."""

from .cli import main

main()
