"""Argument helpers shared by the subcommands."""

import ast
import json

import config
from modules.config_checks import ConfigError


def add_profile_arguments(parser, default="demo"):
    parser.add_argument("--profile", default=default, choices=sorted(config.PROFILES))
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides; VALUE is a Python literal when it parses as one",
    )


def parse_overrides(items):
    """KEY=VALUE strings; VALUE is a Python literal when it parses as one, else a string."""
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key] = raw
    return overrides


def print_json(payload):
    print(json.dumps(payload, indent=2, default=str))
