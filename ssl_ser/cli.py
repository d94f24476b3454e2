"""``ssl-ser``: a thin command line over the package.

Each subcommand is one module in :mod:`ssl_ser.commands` defining ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int | None``; they are discovered, so adding a
command is adding a module. Command modules import heavy libraries inside ``run`` so that
``ssl-ser --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from ssl_ser import __version__
from ssl_ser.errors import SslSerError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssl-ser", description="Self-/semi-supervised speech emotion recognition.")
    parser.add_argument("--version", action="version", version=f"ssl-ser {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of input errors too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import ssl_ser.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"ssl_ser.commands.{info.name}")
        name = getattr(module, "NAME", info.name.replace("_", "-"))
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args._run(args)
    except SslSerError as err:
        if args.traceback or os.environ.get("SSL_SER_TRACEBACK"):
            raise
        print(f"ssl-ser {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ssl-ser {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
