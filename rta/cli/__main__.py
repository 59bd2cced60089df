"""`python -m rta.cli ...`: the `rta` command (tests and `rta run --processes N` start it so)."""

from rta.cli import main

main()
