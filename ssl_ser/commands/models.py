"""``ssl-ser models [NAME] [--option key=value ...]``: list the models or summarise one."""

from __future__ import annotations

import argparse

HELP = "list the models with their parameter counts, or summarise one (blocks, shapes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a model to summarise; without it, list them all")
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a model option (value read as YAML: size=tiny, widths=[8,16,32,64]); "
                             "in_features and num_classes are accepted too; repeatable")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.config import apply_overrides
    from ssl_ser.models import summary

    if args.name is None:
        if args.option:
            # deferred: start-up cost: `ssl-ser --help` imports every command
            from ssl_ser.config import ConfigError

            raise ConfigError("--option needs a model NAME")
        print(summary.model_table())
        return 0
    options = apply_overrides({}, args.option)
    print(summary.summarize(args.name, options))
    return 0
