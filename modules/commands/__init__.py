"""Subcommands of `firesmoke` (modules/cli.py), one module each."""
