"""Issue 4's parity check: on the same saved embeddings, the metrics of
`sslsweep analyze` against scikit-learn and numpy.

    /usr/bin/python3 bench/analysis_parity.py --bin build/bin --dir EXPORT_DIR [--layer embedding]

EXPORT_DIR holds what `sslsweep-train --export-features` writes
(<layer>.train.npy, <layer>.test.npy, labels.{fine,coarse}.{train,test}.npy);
bench/analysis_parity.sh trains a Fashion-MNIST VICReg model to make it.
For the fine and coarse targets it compares
  NCC accuracy (train, test) with NearestCentroid     must agree exactly
  kNN test accuracy with a numpy weighted cosine kNN  within 0.5 points
  linear probe test accuracy with LogisticRegression  within 2 points
                                                      (StandardScaler, lbfgs, C=1, max_iter=1000)
  CDNV and NC1 with direct numpy formulas             relative difference < 1e-6
prints a row per comparison and exits 1 if any is out of tolerance.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analysis_reference as ref  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--layer", default="embedding")
    args = parser.parse_args()

    def path(name):
        return os.path.join(args.dir, name + ".npy")

    command = [os.path.join(args.bin, "sslsweep"), "analyze",
               "--features", path(args.layer + ".train"), "--labels", path("labels.fine.train"),
               "--test-features", path(args.layer + ".test"),
               "--test-labels", path("labels.fine.test"),
               "--label-set", "coarse=%s:%s" % (path("labels.coarse.train"),
                                                path("labels.coarse.test")),
               "--targets", "fine,coarse", "--layer", args.layer, "--format", "json"]
    ours = json.loads(subprocess.run(command, check=True, capture_output=True,
                                     text=True).stdout)["metrics"]

    # float64 on both sides: ours computes NCC in float64, and an exact
    # comparison must not hinge on float32 rounding of near-ties.
    train = np.load(path(args.layer + ".train")).astype(np.float64)
    test = np.load(path(args.layer + ".test")).astype(np.float64)
    print("%s: %d x %d train, %d test" % (args.layer, train.shape[0], train.shape[1],
                                          test.shape[0]))
    print("%-34s %10s %10s %10s  %s" % ("metric", "sslsweep", "reference", "diff", "tolerance"))
    failures = 0
    for target in ["fine", "coarse"]:
        tr, te = np.load(path("labels.%s.train" % target)), np.load(path("labels.%s.test" % target))
        rows = [
            ("ncc_train_acc", ref.ncc_accuracy(train, tr, train, tr), "exact", 0.0),
            ("ncc_test_acc", ref.ncc_accuracy(train, tr, test, te), "exact", 0.0),
            ("knn_test_acc", ref.knn_accuracy_numpy(train, tr, test, te), "0.5 points", 0.005),
            ("linear_test_acc", ref.logistic_accuracy(train, tr, test, te, max_iter=1000),
             "2 points", 0.02),
            ("cdnv", ref.cdnv(train, tr), "1e-6 relative", None),
            ("nc1", ref.nc1(train, tr), "1e-6 relative", None),
        ]
        for metric, reference, tolerance_text, tolerance in rows:
            name = "%s/%s/%s" % (metric, target, args.layer)
            value = ours[name]
            diff = value - reference
            ok = (abs(diff) <= tolerance + 1e-12 if tolerance is not None
                  else abs(diff) <= 1e-6 * abs(reference))
            failures += not ok
            print("%-34s %10.6f %10.6f %+10.6f  %s%s" % (name, value, reference, diff,
                                                       tolerance_text, "" if ok else "  FAIL"))
    print("parity: %s" % ("all within tolerance" if failures == 0 else "%d FAILED" % failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
