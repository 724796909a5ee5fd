"""vision/train 1.0.0: fit a classifier, score it on the test set, write the metrics.

Metrics go as a JSON object to the file named by $MODREG_METRICS (the engine records them
with the run): accuracy, f1_macro and train_seconds. Every model is small and single-threaded
so that a sweep of many of them stays quick.
"""

import argparse
import json
import os
import pickle
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # steps run side by side: one core each

import numpy as np  # noqa: E402
from sklearn.base import ClassifierMixin  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

MODELS = ("logistic", "forest", "mlp")


def count_execution(step: str) -> None:
    """Append one line to $DIGITS_EXAMPLE_COUNTER, if set: tests count real executions."""
    counter = os.environ.get("DIGITS_EXAMPLE_COUNTER")
    if counter:
        with open(counter, "a", encoding="utf-8") as out:
            out.write(f"{step} {os.getpid()}\n")


def make_model(name: str, seed: int) -> ClassifierMixin:
    if name == "logistic":
        return LogisticRegression(max_iter=300)
    if name == "forest":
        return RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)
    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=seed)


def write_metrics(metrics: dict[str, float]) -> None:
    path = os.environ.get("MODREG_METRICS")
    if path:
        Path(path).write_text(json.dumps(metrics, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--model-out", type=Path, required=True)
    parser.add_argument("--model", default="logistic")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.model not in MODELS:
        parser.error(f"--model: expected one of {', '.join(MODELS)}, got {args.model!r}")
    count_execution("train")

    data = {
        name: np.load(args.dataset / f"{name}.npy")
        for name in ("X_train", "y_train", "X_test", "y_test")
    }
    model = make_model(args.model, args.seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # capped iterations, on purpose
        model.fit(data["X_train"], data["y_train"])
    seconds = time.perf_counter() - started
    predicted = model.predict(data["X_test"])
    metrics = {
        "accuracy": round(float(accuracy_score(data["y_test"], predicted)), 4),
        "f1_macro": round(float(f1_score(data["y_test"], predicted, average="macro")), 4),
        "train_seconds": round(seconds, 3),
    }
    args.model_out.parent.mkdir(parents=True, exist_ok=True)
    args.model_out.write_bytes(pickle.dumps(model, protocol=4))
    write_metrics(metrics)
    print(f"train 1.0.0: {args.model} accuracy {metrics['accuracy']:.4f}")


if __name__ == "__main__":
    main()
