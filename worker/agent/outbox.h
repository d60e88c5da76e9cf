// Outbox: the worker's ordered queue of everything it tells the coordinator
// about its trials (rank 0's rendezvous, epoch metrics, checkpoint uploads,
// the attempt's end), with one sender thread that sends strictly in order,
// so that nothing about a trial waits on the thread reading its trainer.
// The rendezvous goes first because the trainer announces it first: the
// other ranks wait for it, and rank 0's first metrics wait for them.
//
// Delivery: each item is sent until the coordinator answers it. Each call
// waits for the connection (PrepareCall) up to its timeout, so an item goes
// out as soon as a restarted coordinator is back; transient failures
// (coordinator_connection.h) are retried with exponential back-off forever,
// until GiveUpAt's deadline (the agent stopping). Because items go in
// order, a checkpoint is uploaded only after every earlier report of its
// attempt was acknowledged: a later attempt that resumes from it loses no
// metrics. Of several checkpoints of one attempt waiting in the queue only
// the newest is uploaded; the files of the others, and of every checkpoint
// once sent or dropped, are deleted (they are the trainer's checkpoint-E.pt
// links).
//
// An attempt ends early when the coordinator says it is stale
// (FailedPrecondition or NotFound), when a ReportMetrics answer says stop
// (early termination pruned the trial), or when Drop() is called: its queued
// items are dropped, later ones are ignored, and the AttemptEnded callback
// tells the owner to stop its trainer. Any other refusal of an item is
// logged and the item skipped (the coordinator will never take it).
//
// Thread contract: thread-safe. The callback and the log run on the sender
// thread with no lock held; they must not call WaitUntilSettled.

#ifndef SSLSWEEP_WORKER_AGENT_OUTBOX_H_
#define SSLSWEEP_WORKER_AGENT_OUTBOX_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "proto/sslsweep.grpc.pb.h"
#include "worker/agent/checkpoint_transfer.h"
#include "worker/agent/coordinator_connection.h"

namespace sslsweep {

// One attempt of one trial.
struct AttemptKey {
  int64_t trial_id = 0;
  int32_t attempt = 0;
  bool operator<(const AttemptKey& o) const {
    return std::pair(trial_id, attempt) < std::pair(o.trial_id, o.attempt);
  }
  bool operator==(const AttemptKey& o) const {
    return trial_id == o.trial_id && attempt == o.attempt;
  }
};

struct OutboxOptions {
  BackoffOptions backoff;
  absl::Duration rpc_timeout = absl::Seconds(10);       // each unary call
  absl::Duration transfer_timeout = absl::Minutes(10);  // each checkpoint upload
  std::function<void(const std::string&)> log;          // null: silent
};

class Outbox {
 public:
  enum class Settlement {
    kAcknowledged,  // the coordinator answered every item of the attempt
    kStale,         // the coordinator no longer accepts the attempt
    kStopped,       // pruned by the coordinator, or Drop()ped
    kGaveUp,        // the GiveUpAt deadline passed with items unsent
  };
  struct AttemptResult {
    Settlement settlement = Settlement::kAcknowledged;
    std::string reason;       // why it ended early
    bool will_retry = false;  // a FailTrial's answer
  };
  // An attempt ended early (kStale, or kStopped by the coordinator).
  using AttemptEnded =
      std::function<void(const AttemptKey&, Settlement, const std::string& reason)>;

  // `stub` must outlive the Outbox. Starts the sender thread.
  Outbox(OutboxOptions options, v1::WorkerService::StubInterface* stub,
         AttemptEnded on_attempt_ended);
  // Stops the sender (an RPC in flight finishes first); queued items are
  // dropped, their checkpoint files deleted.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Starts tracking `key`, whose items name `worker_id`. REQUIRES: not open.
  void Open(const AttemptKey& key, std::string worker_id);
  // Queue one item of an open attempt; ignored (a checkpoint's file deleted)
  // once the attempt ended.
  void AddMetrics(const AttemptKey& key, int32_t epoch,
                  const std::vector<std::pair<std::string, double>>& metrics);
  // `path` is the checkpoint file after `epoch` epochs; the Outbox deletes it.
  void AddCheckpoint(const AttemptKey& key, int32_t epoch, const std::string& path);
  // Rank 0's rendezvous (ReportRendezvous).
  void AddRendezvous(const AttemptKey& key, const v1::Rendezvous& rendezvous);
  void AddFinish(const AttemptKey& key);
  void AddFail(const AttemptKey& key, v1::FailureKind kind, const std::string& reason);

  // Ends the attempt now (kStopped with `reason`): its queued items are
  // dropped and nothing more of it is sent. No callback.
  void Drop(const AttemptKey& key, const std::string& reason);
  // Blocks until every queued item of the attempt was answered or the
  // attempt ended, then forgets it; past the GiveUpAt deadline it cancels the
  // call in flight. REQUIRES: open.
  AttemptResult WaitUntilSettled(const AttemptKey& key);

  // Transient failures are retried until `deadline` only (no call starts
  // with a later deadline, and WaitUntilSettled cancels one still running
  // then); then every queued item is dropped, and later ones at once.
  void GiveUpAt(absl::Time deadline);

 private:
  using Payload = std::variant<v1::ReportRendezvousRequest, v1::ReportMetricsRequest,
                               CheckpointUpload, v1::FinishTrialRequest, v1::FailTrialRequest>;
  struct Item {
    AttemptKey key;
    Payload payload;
  };
  struct AttemptRecord {
    std::string worker_id;
    int queued = 0;  // items in queue_, the one in flight included
    bool ended = false;
    AttemptResult result;
  };
  // What one answered item means for its attempt.
  struct Outcome {
    bool end_attempt = false;
    Settlement settlement = Settlement::kAcknowledged;
    std::string reason;
    bool will_retry = false;
  };

  void Add(const AttemptKey& key, Payload payload);
  void SenderLoop();
  // Sends `item` until answered, retrying transient failures; the status of
  // the last try.
  absl::Status Send(const Item& item, Outcome* outcome);
  absl::Status SendOnce(const Item& item, Outcome* outcome);
  absl::Status SendOn(grpc::ClientContext* context, const Item& item, Outcome* outcome);
  // Sleeps `delay`; false if the sender must stop retrying `key`.
  bool SleepBeforeRetry(const AttemptKey& key, absl::Duration delay);
  // Interprets the last status of `item` (logging it) into `outcome`.
  void Judge(const Item& item, const absl::Status& status, Outcome* outcome);
  void EndAttempt(const AttemptKey& key, Settlement settlement, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the queued items of `key` for which `which` holds (never the
  // one in flight), deleting their checkpoint files.
  void RemoveQueued(const AttemptKey& key, const std::function<bool(const Item&)>& which)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(const std::string& message) const;

  // Constant after construction.
  const OutboxOptions options_;
  v1::WorkerService::StubInterface* const stub_;
  const AttemptEnded on_attempt_ended_;

  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool front_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // The call sending the front item, for TryCancel; null between calls.
  grpc::ClientContext* in_flight_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<AttemptKey, AttemptRecord> attempts_ ABSL_GUARDED_BY(mu_);
  absl::Time give_up_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool gave_up_ ABSL_GUARDED_BY(mu_) = false;
  // Wakes the sender from a back-off sleep to look at its state again.
  bool interrupt_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;

  std::thread sender_;  // started last, joined by the destructor
};

}  // namespace sslsweep

#endif  // SSLSWEEP_WORKER_AGENT_OUTBOX_H_
