"""`firesmoke <subcommand>`: the one command-line entry point (a console script of the package).

Each subcommand is a module in `modules/commands/` with `NAME`, `HELP`, `add_arguments(parser)`
and `main(args) -> exit code`; this file only finds and dispatches them, so adding a command
touches no other command.
"""

import argparse
import importlib
import pkgutil
import sys

from modules import commands
from modules.config_checks import ConfigError


def command_modules():
    """Every subcommand module, by its NAME, in alphabetical order."""
    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        found[module.NAME] = module
    return dict(sorted(found.items()))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="firesmoke", description="Fire/smoke CNNs from PyTorch through FINN to a PYNQ FPGA."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<subcommand>")
    for name, module in command_modules().items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except ConfigError as error:  # a user's setting, not a bug: one line, no traceback
        print(f"firesmoke {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
