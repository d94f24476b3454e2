"""Write a recipe's job config: one of the project's ``jobs/*.yaml`` with the recipe's
``conf/*.yaml`` overrides applied, in order.

    python bench/recipes/common/job.py jobs/BASE.yaml conf/A.yaml [conf/B.yaml ...] --out JOB.yaml [--set name=X]

A conf file is a flat mapping of dotted keys to values, each applied exactly as
``ssl-ser train --set KEY=VALUE`` would apply it: the value replaces whatever the job holds at
that key (a mapping value replaces the whole section)::

    train.epochs: 10
    data.train: [shards/ravdess_train]     # relative paths resolve against the working directory
    method: {name: supervised}

``ssl-ser train``/``cv`` validate the written job when they load it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from ssl_ser.config import apply_overrides, read_yaml


def merge(base: str | Path, confs: list[str | Path], overrides: list[str] = ()) -> dict:
    """``base`` with every conf file's ``key: value`` applied as ``--set key=value``, then
    ``overrides`` (``key=value`` strings)."""
    job = read_yaml(base)
    for conf in confs:
        # JSON is YAML, so each value reaches apply_overrides' YAML parser unchanged
        apply_overrides(job, [f"{key}={json.dumps(value)}" for key, value in read_yaml(conf).items()])
    return apply_overrides(job, overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the project's job config, e.g. jobs/pyresnet.yaml")
    parser.add_argument("confs", nargs="*", help="override files, applied in order")
    parser.add_argument("--out", required=True, help="the job config to write")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="one more override, applied last (e.g. name=...)")
    args = parser.parse_args(argv)
    job = merge(args.base, args.confs, args.overrides)
    header = "# written by bench/recipes/common/job.py from " + " + ".join([args.base, *args.confs]) + "\n"
    Path(args.out).write_text(header + yaml.safe_dump(job, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
