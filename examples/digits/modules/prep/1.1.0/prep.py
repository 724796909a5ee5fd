"""vision/prep 1.1.0: split the digits and scale every pixel to [0, 1] (min-max).

The scaler is fitted on the training images only, so nothing leaks from the test set.
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # steps run side by side: one core each

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402


def count_execution(step: str) -> None:
    """Append one line to $DIGITS_EXAMPLE_COUNTER, if set: tests count real executions."""
    counter = os.environ.get("DIGITS_EXAMPLE_COUNTER")
    if counter:
        with open(counter, "a", encoding="utf-8") as out:
            out.write(f"{step} {os.getpid()}\n")


def save_dataset(out: Path, arrays: dict[str, np.ndarray], info: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(out / f"{name}.npy", array)
    (out / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count_execution("prep")

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_fraction, random_state=args.seed, stratify=y
    )
    scaler = MinMaxScaler().fit(x_train)
    arrays = {
        "X_train": scaler.transform(x_train).astype(np.float32),
        "X_test": scaler.transform(x_test).astype(np.float32),
        "y_train": y_train.astype(np.int64),
        "y_test": y_test.astype(np.int64),
    }
    info = {"method": "minmax", "features": int(x.shape[1]), "train": len(y_train)}
    save_dataset(args.out, arrays, info)
    print(f"prep 1.1.0: min-max scaled {len(y_train)} train / {len(y_test)} test images")


if __name__ == "__main__":
    main()
