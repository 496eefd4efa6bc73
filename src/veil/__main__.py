"""`python -m veil`: the same as the `veil` command."""

from veil.cli import main

if __name__ == "__main__":
    main()
