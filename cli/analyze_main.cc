// sslsweep-analyze: `sslsweep analyze`, the clustering measurements on
// exported embeddings. Composition root only: flags into AnalyzeOptions, then
// RunAnalyze. `sslsweep analyze ARGS` execs this binary with ARGS.
//
// Exit codes: 0 success; 1 the measurement failed; 2 bad input.

#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/analyze_command.h"

int main(int argc, char** argv) {
  sslsweep::AnalyzeOptions options;
  CLI::App app{
      "Measures the clustering of embeddings exported from any model (numpy .npy files): "
      "nearest class center accuracy, CDNV, NC1, kNN and linear probe accuracy, for the "
      "labels, a seeded random partition and extra label sets.",
      "sslsweep analyze"};
  app.add_option("--features", options.features_path, "training features: [N, D] float32/64 .npy")
      ->required();
  app.add_option("--labels", options.labels_path, "training labels: [N] integer .npy (target 'fine')")
      ->required();
  app.add_option("--test-features", options.test_features_path, "test features: [M, D] .npy");
  app.add_option("--test-labels", options.test_labels_path, "test labels: [M] integer .npy");
  app.add_option("--label-set", options.label_sets,
                 "extra target NAME=TRAIN.npy[:TEST.npy], repeatable "
                 "(e.g. coarse=train_coarse.npy:test_coarse.npy)")
      ->take_all()
      ->expected(1)
      ->allow_extra_args(false);
  app.add_option("--targets", options.targets,
                 "comma-separated targets in order: fine, random, label set NAMEs; or all")
      ->capture_default_str();
  app.add_option("--metrics", options.metrics,
                 "comma-separated metric groups: ncc, cdnv, nc1, knn, linear; or all")
      ->capture_default_str();
  app.add_option("--knn-k", options.knn_k, "kNN neighbours")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--knn-temperature", options.knn_temperature, "kNN vote weight exp(sim / T)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", options.seed,
                 "seed of the random partition (test: seed + 1)")
      ->capture_default_str();
  app.add_option("--layer", options.layer, "the <layer> part of the metric names")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "LibTorch threads (0: every core)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--format", options.format, "output: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.footer(
      "Metrics are named <metric>/<target>/<layer>, e.g. ncc_test_acc/fine/features.\n"
      "Example: sslsweep analyze --features train.npy --labels train_labels.npy \\\n"
      "    --test-features test.npy --test-labels test_labels.npy \\\n"
      "    --label-set coarse=train_coarse.npy:test_coarse.npy --format json");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? sslsweep::kAnalyzeOk : sslsweep::kAnalyzeBadInput;
  }
  return sslsweep::RunAnalyze(options, std::cout, std::cerr);
}
