"""How much larger `model.init`'s Kaiming weights are than PyTorch's default, per convolution
of a model (round 11). Behind BatchNorm a convolution's output does not depend on its weights'
scale, but its gradient shrinks as 1/|w| and so its relative step as 1/|w|^2: larger initial
weights train like a smaller learning rate.

    python local/init_scale.py [--model pyresnet] [--in-features 128] [--set size=tiny ...]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import yaml

from ssl_ser.models import build_model
from ssl_ser.models.init import CONVOLUTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pyresnet")
    parser.add_argument("--in-features", type=int, default=128)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--set", action="append", default=["size=tiny"], metavar="KEY=VALUE")
    args = parser.parse_args()
    options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    models = {}
    for init in (False, True):
        torch.manual_seed(0)
        models[init] = build_model(args.model, in_features=args.in_features, num_classes=args.classes,
                                   init=init, **options)
    ratios = [b.weight.norm().item() / a.weight.norm().item()
              for a, b in zip(models[False].modules(), models[True].modules(), strict=True)
              if isinstance(a, CONVOLUTIONS)]
    step = [1 / r**2 for r in ratios]
    print(f"{args.model} {options}: {len(ratios)} convolutions; Kaiming / default weight norm: median "
          f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); relative step "
          f"behind BatchNorm, Kaiming / default: median {statistics.median(step):.2f}")


if __name__ == "__main__":
    main()
