// SweepSpec: a sweep file (docs/sweep-format.md), parsed and validated, and
// its expansion into trials.
//
// The format is a superset of the Weights & Biases sweep format: parameter
// names are dotted paths into the trial configuration (worker/trial_config.h),
// and `trial:` gives the base configuration every trial starts from. Parsing
// checks everything that can be checked without expanding (paths, values
// against the schema, distribution bounds, the trial count against
// kMaxTrialsPerSweep), so a sweep that parses is rejected later only for a
// combination of values that breaks a cross-field rule of the schema.
//
// Thread contract: the functions are pure and may be called from any thread;
// a SweepSpec is a plain value.

#ifndef SSLSWEEP_COORDINATOR_SWEEP_SPEC_H_
#define SSLSWEEP_COORDINATOR_SWEEP_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/parameter_distribution.h"
#include "worker/trial_config.h"

namespace sslsweep {

// At most this many ranks (one worker each) per data-parallel trial.
inline constexpr int32_t kMaxTrialRanks = 1024;

inline constexpr int64_t kMaxTrialsPerSweep = 100000;
// Bounds of the scheduling keys max_attempts and priority.
inline constexpr int32_t kMaxAttemptsLimit = 100;
inline constexpr int32_t kPriorityLimit = 1000;

struct SweepMetric {
  std::string name;  // empty if the sweep names no metric
  std::string goal;  // "minimize" | "maximize"
};

// `early_terminate: {type: hyperband, ...}`, acted on by HyperbandState
// (coordinator/hyperband.h). Either min_iter, or max_iter with s, is set
// (non-zero). eta and strict default as in W&B's sweep schema: 3 and true.
struct HyperbandSpec {
  int64_t min_iter = 0;
  int64_t max_iter = 0;
  int64_t s = 0;
  double eta = 3.0;
  bool strict = true;
};

struct ExpandedTrial {
  int32_t index = 0;  // 0-based position in the sweep
  // (dotted path, value text) for every swept parameter, in declaration order.
  // Values given in the file keep their text (`1e-5`); drawn ones are written
  // as the shortest text that reads back as the same number.
  std::vector<std::pair<std::string, std::string>> params;
  std::string config_yaml;  // TrialConfigToYaml of the base trial + params
  int32_t epochs = 0;       // that configuration's epochs
};

struct SweepSpec {
  std::string name;
  std::string description;
  std::string method;  // "grid" | "random"
  SweepMetric metric;
  int64_t run_cap = 0;  // 0: none (grid only; random requires one)
  uint64_t seed = 0;    // seeds random sampling
  int32_t ranks = 1;    // processes per trial (`resources: {ranks: N}`)
  std::string ranks_location;  // "<source>:<line>:<col>" of resources.ranks, if given
  std::optional<HyperbandSpec> early_terminate;
  // Scheduling (ours). Failed attempts (trainer crashes, lost workers) of a
  // trial before it fails for good, 1..kMaxAttemptsLimit.
  int32_t max_attempts = 3;
  // Trials of this sweep running at once; 0: no limit.
  int32_t max_concurrent = 0;
  // Higher sweeps lease first, -kPriorityLimit..kPriorityLimit.
  int32_t priority = 0;
  // Non-fatal findings, each "<source>:<line>:<col>: <what>".
  std::vector<std::string> warnings;

  // What ExpandSweep works from.
  std::string parameters_location;         // "<source>:<line>:<col>" of `parameters`
  TrialConfig base_trial;                  // `trial:`, defaults filled in
  std::vector<SweptParameter> parameters;  // in declaration order
  // The number of trials ExpandSweep returns (<= kMaxTrialsPerSweep).
  int64_t trial_count = 0;
};

// Parses and validates a sweep file's text. `source` names the file in
// messages. Every error is InvalidArgument
// "<source>:<line>:<col>: <what>; <what is accepted>", pointing at the
// offending node.
absl::StatusOr<SweepSpec> ParseSweepSpec(absl::string_view yaml_text,
                                         absl::string_view source);

// Expands a parsed sweep into its trials. Grid: the cartesian product of the
// parameters' values, the first declared parameter outermost (varying
// slowest), cut to the first run_cap if set. Random: run_cap trials; trial i
// draws from a generator seeded with (seed, i), so the same seed gives the
// same trials and raising run_cap keeps the earlier ones. Fails with
// InvalidArgument naming the trial and its params if a combination breaks a
// cross-field rule of the schema, or if a distribution keeps drawing values
// the schema rejects.
// Each trial costs about 0.1 ms, most of it in TrialConfigToYaml.
// REQUIRES: `spec` came from ParseSweepSpec.
absl::StatusOr<std::vector<ExpandedTrial>> ExpandSweep(const SweepSpec& spec);

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_SWEEP_SPEC_H_
