"""vision/augment 1.0.0: add a noisy copy of every training image; the test set is untouched.

The noise of each feature is Gaussian with a standard deviation of ``noise`` times that
feature's spread in the training set, so it suits any scaling (pixels, z-scores, PCA).
"""

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # steps run side by side: one core each

import numpy as np  # noqa: E402


def count_execution(step: str) -> None:
    """Append one line to $DIGITS_EXAMPLE_COUNTER, if set: tests count real executions."""
    counter = os.environ.get("DIGITS_EXAMPLE_COUNTER")
    if counter:
        with open(counter, "a", encoding="utf-8") as out:
            out.write(f"{step} {os.getpid()}\n")


def add_noise(x: np.ndarray, y: np.ndarray, noise: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    spread = x.std(axis=0, keepdims=True)
    noisy = x + rng.normal(size=x.shape).astype(x.dtype) * (noise * spread).astype(x.dtype)
    return np.concatenate([x, noisy]), np.concatenate([y, y])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count_execution("augment")

    shutil.copytree(args.dataset, args.out, dirs_exist_ok=True)
    info = json.loads((args.dataset / "dataset.json").read_text())
    if args.noise > 0:
        x, y = add_noise(
            np.load(args.dataset / "X_train.npy"),
            np.load(args.dataset / "y_train.npy"),
            args.noise,
            args.seed,
        )
        np.save(args.out / "X_train.npy", x)
        np.save(args.out / "y_train.npy", y)
        info["train"] = len(y)
    info["noise"] = args.noise
    (args.out / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    print(f"augment 1.0.0: noise {args.noise}, {info['train']} training images")


if __name__ == "__main__":
    main()
