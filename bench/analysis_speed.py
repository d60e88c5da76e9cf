"""Issue 4's speed comparison: the whole metric suite of `sslsweep analyze`
for one layer and the fine, coarse and random targets on 60,000 x 512
training and 10,000 x 512 test features, against scikit-learn doing the same
(NearestCentroid, KNeighborsClassifier, LogisticRegression) in one run.

    /usr/bin/python3 bench/analysis_speed.py --bin build/bin [--rows 60000]

Features are seeded synthetic clusters (10 fine classes in 4 superclasses,
Gaussian noise around hierarchical means), written as float32 .npy. Ours is
timed as a whole process (start-up and .npy loading included), twice, once
before and once after the peer, and the faster run counts; the peer is timed
inside Python (loading excluded), with scikit-learn's defaults. Both use every
core. Prints a JSON line per side and the ratio last.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analysis_reference as ref  # noqa: E402

FINE, COARSE = 10, 4


def make_split(rng, rows, dim, fine_means, coarse_of_fine):
    labels = rng.integers(0, FINE, size=rows)
    features = fine_means[labels] + rng.standard_normal((rows, dim))
    return features.astype(np.float32), labels.astype(np.int64), coarse_of_fine[labels]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="build/bin")
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--test-rows", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()

    rng = np.random.default_rng(4)
    coarse_of_fine = np.arange(FINE) % COARSE
    coarse_means = rng.standard_normal((COARSE, args.dim)) * 0.08
    fine_means = coarse_means[coarse_of_fine] + rng.standard_normal((FINE, args.dim)) * 0.06
    train, train_fine, train_coarse = make_split(rng, args.rows, args.dim, fine_means,
                                                 coarse_of_fine)
    test, test_fine, test_coarse = make_split(rng, args.test_rows, args.dim, fine_means,
                                              coarse_of_fine)
    train_random = rng.permutation(np.arange(args.rows) % FINE)
    test_random = rng.permutation(np.arange(args.test_rows) % FINE)

    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, array in [("train", train), ("test", test), ("fine.train", train_fine),
                            ("fine.test", test_fine), ("coarse.train", train_coarse),
                            ("coarse.test", test_coarse)]:
            files[name] = os.path.join(tmp, name + ".npy")
            np.save(files[name], array)
        command = [os.path.join(args.bin, "sslsweep"), "analyze",
                   "--features", files["train"], "--labels", files["fine.train"],
                   "--test-features", files["test"], "--test-labels", files["fine.test"],
                   "--label-set", "coarse=%s:%s" % (files["coarse.train"], files["coarse.test"]),
                   "--targets", "fine,coarse,random", "--format", "json"]

        def run_ours():
            start = time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            return time.perf_counter() - start, json.loads(out)

        ours_seconds, ours = run_ours()

        peer = {}
        start = time.perf_counter()
        for target, (tr, te) in {"fine": (train_fine, test_fine),
                                 "coarse": (train_coarse, test_coarse),
                                 "random": (train_random, test_random)}.items():
            peer["ncc_train_acc/" + target] = ref.ncc_accuracy(train, tr, train, tr)
            peer["ncc_test_acc/" + target] = ref.ncc_accuracy(train, tr, test, te)
            peer["knn_test_acc/" + target] = ref.knn_accuracy_sklearn(train, tr, test, te)
            peer["linear_test_acc/" + target] = ref.logistic_accuracy(train, tr, test, te)
        peer_seconds = time.perf_counter() - start

        again_seconds, _ = run_ours()
        ours_seconds = min(ours_seconds, again_seconds)

    print(json.dumps({"impl": "sslsweep", "seconds": round(ours_seconds, 2),
                      "metrics": ours["metrics"]}))
    print(json.dumps({"impl": "scikit-learn", "seconds": round(peer_seconds, 2),
                      "metrics": peer}))
    print("%d x %d train, %d test, 3 targets: sslsweep %.2f s, scikit-learn %.2f s; "
          "ratio scikit-learn/sslsweep %.1fx"
          % (args.rows, args.dim, args.test_rows, ours_seconds, peer_seconds,
             peer_seconds / ours_seconds))


if __name__ == "__main__":
    main()
