"""vision/prep: the numbers of every file in --raw, the first --size of them, scaled to [0, 1]."""

import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--raw", type=Path, required=True)
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--size", type=int, required=True)
args = parser.parse_args()

numbers = [float(word) for path in sorted(args.raw.iterdir()) for word in path.read_text().split()]
numbers = numbers[: args.size]
top = max(numbers, default=1.0) or 1.0
args.out.mkdir(parents=True, exist_ok=True)
(args.out / "data.json").write_text(json.dumps([n / top for n in numbers]))
