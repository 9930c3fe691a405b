"""Digits: SAM and ASAM against their base optimizer alone, and Lookahead against Adam alone.

Every run trains the same two-layer perceptron (seeded initialisation and batch order) on the same
split of scikit-learn's digits, and reports the mean and spread of the test accuracy over the seeds.

    python scripts/sam_digits.py [--seeds 5] [--epochs 10]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotated_opt import SAM, SGD, Adam, Lookahead  # noqa: E402
from annotated_opt.toys.digits import load_digits, mlp, train  # noqa: E402

CONTESTANTS = {
    "SGD (lr 0.05, momentum 0.9)": lambda m: SGD(m.parameters(), lr=0.05, momentum=0.9),
    "SAM over it, rho 0.05": lambda m: SAM(m.parameters(), SGD, rho=0.05, lr=0.05, momentum=0.9),
    "SAM over it, rho 0.1": lambda m: SAM(m.parameters(), SGD, rho=0.1, lr=0.05, momentum=0.9),
    "ASAM over it, rho 1.0": lambda m: SAM(m.parameters(), SGD, rho=1.0, adaptive=True, lr=0.05, momentum=0.9),
    "Adam (lr 0.003)": lambda m: Adam(m.parameters(), lr=0.003),
    "Lookahead over it, k 5, alpha 0.5": lambda m: Lookahead(Adam(m.parameters(), lr=0.003), k=5, alpha=0.5),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    data = load_digits()
    print(f"{'optimizer':<36} {'test accuracy':>18} {'last-epoch loss':>16} {'seconds':>8}")
    for name, make in CONTESTANTS.items():
        accuracies, losses, seconds = [], [], 0.0
        for seed in range(args.seeds):
            start = time.perf_counter()
            result = train(mlp(seed=seed), make, data, epochs=args.epochs, seed=seed)
            seconds += time.perf_counter() - start
            accuracies.append(100 * result.test_accuracy)
            last_epoch = result.losses[-len(result.losses) // args.epochs:]
            losses.append(sum(last_epoch) / len(last_epoch))
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(f"{name:<36} {statistics.mean(accuracies):>10.2f} ± {spread:4.2f} % "
              f"{statistics.mean(losses):>16.4f} {seconds / args.seeds:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
