#include "worker/agent/outbox.h"

#include <cstdio>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"

namespace sslsweep {
namespace {

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// "epoch 3 metrics", for log lines.
std::string Describe(const std::variant<v1::ReportRendezvousRequest, v1::ReportMetricsRequest,
                                        CheckpointUpload, v1::FinishTrialRequest,
                                        v1::FailTrialRequest>& payload) {
  return std::visit(
      Overloaded{
          [](const v1::ReportRendezvousRequest&) { return std::string("rendezvous"); },
          [](const v1::ReportMetricsRequest& r) {
            return absl::StrCat("epoch ", r.epoch(), " metrics");
          },
          [](const CheckpointUpload& u) { return absl::StrCat("epoch ", u.epoch, " checkpoint"); },
          [](const v1::FinishTrialRequest&) { return std::string("success"); },
          [](const v1::FailTrialRequest& r) {
            return absl::StrCat("failure (", v1::FailureKind_Name(r.kind()), ")");
          },
      },
      payload);
}

std::string Name(const AttemptKey& key) {
  return absl::StrCat("trial ", key.trial_id, " attempt ", key.attempt);
}

}  // namespace

Outbox::Outbox(OutboxOptions options, v1::WorkerService::StubInterface* stub,
               AttemptEnded on_attempt_ended)
    : options_(std::move(options)), stub_(stub), on_attempt_ended_(std::move(on_attempt_ended)) {
  sender_ = std::thread([this] { SenderLoop(); });
}

Outbox::~Outbox() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    interrupt_ = true;
    if (in_flight_context_ != nullptr) in_flight_context_->TryCancel();
  }
  sender_.join();
  absl::MutexLock lock(&mu_);
  for (const Item& item : queue_) {
    if (const auto* upload = std::get_if<CheckpointUpload>(&item.payload)) {
      std::remove(upload->path.c_str());
    }
  }
}

void Outbox::Log(const std::string& message) const {
  if (options_.log) options_.log(message);
}

void Outbox::Open(const AttemptKey& key, std::string worker_id) {
  absl::MutexLock lock(&mu_);
  AttemptRecord& record = attempts_[key];
  record = AttemptRecord{};
  record.worker_id = std::move(worker_id);
}

void Outbox::AddMetrics(const AttemptKey& key, int32_t epoch,
                        const std::vector<std::pair<std::string, double>>& metrics) {
  v1::ReportMetricsRequest request;
  request.set_trial_id(key.trial_id);
  request.set_attempt(key.attempt);
  request.set_epoch(epoch);
  for (const auto& [name, value] : metrics) {
    v1::Metric* metric = request.add_metrics();
    metric->set_name(name);
    metric->set_value(value);
  }
  Add(key, std::move(request));
}

void Outbox::AddCheckpoint(const AttemptKey& key, int32_t epoch, const std::string& path) {
  CheckpointUpload upload;
  upload.trial_id = key.trial_id;
  upload.attempt = key.attempt;
  upload.epoch = epoch;
  upload.path = path;
  Add(key, std::move(upload));
}

void Outbox::AddRendezvous(const AttemptKey& key, const v1::Rendezvous& rendezvous) {
  v1::ReportRendezvousRequest request;
  request.set_trial_id(key.trial_id);
  request.set_attempt(key.attempt);
  *request.mutable_rendezvous() = rendezvous;
  Add(key, std::move(request));
}

void Outbox::AddFinish(const AttemptKey& key) {
  v1::FinishTrialRequest request;
  request.set_trial_id(key.trial_id);
  request.set_attempt(key.attempt);
  Add(key, std::move(request));
}

void Outbox::AddFail(const AttemptKey& key, v1::FailureKind kind, const std::string& reason) {
  v1::FailTrialRequest request;
  request.set_trial_id(key.trial_id);
  request.set_attempt(key.attempt);
  request.set_kind(kind);
  request.set_reason(reason);
  Add(key, std::move(request));
}

void Outbox::Add(const AttemptKey& key, Payload payload) {
  absl::MutexLock lock(&mu_);
  auto record = attempts_.find(key);
  const bool checkpoint = std::holds_alternative<CheckpointUpload>(payload);
  if (record == attempts_.end() || record->second.ended || gave_up_) {
    if (record != attempts_.end() && !record->second.ended) {
      EndAttempt(key, Settlement::kGaveUp, "the worker stopped trying to reach the coordinator");
    }
    if (checkpoint) std::remove(std::get<CheckpointUpload>(payload).path.c_str());
    return;
  }
  std::visit(Overloaded{
                 [&](CheckpointUpload& u) { u.worker_id = record->second.worker_id; },
                 [&](auto& request) { request.set_worker_id(record->second.worker_id); },
             },
             payload);
  // Only the newest checkpoint matters: it follows every report the older
  // ones did.
  if (checkpoint) {
    RemoveQueued(key, [](const Item& item) {
      return std::holds_alternative<CheckpointUpload>(item.payload);
    });
  }
  queue_.push_back(Item{key, std::move(payload)});
  ++record->second.queued;
}

void Outbox::Drop(const AttemptKey& key, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  auto record = attempts_.find(key);
  if (record == attempts_.end() || record->second.ended) return;
  EndAttempt(key, Settlement::kStopped, reason);
  interrupt_ = true;
  if (front_in_flight_ && queue_.front().key == key && in_flight_context_ != nullptr) {
    in_flight_context_->TryCancel();
  }
}

Outbox::AttemptResult Outbox::WaitUntilSettled(const AttemptKey& key) {
  absl::MutexLock lock(&mu_);
  auto settled = [this, &key]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto record = attempts_.find(key);
    return record == attempts_.end() || record->second.ended || record->second.queued == 0;
  };
  while (!settled()) {
    const absl::Time deadline = give_up_at_;
    auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return settled() || give_up_at_ != deadline;
    };
    if (mu_.AwaitWithDeadline(absl::Condition(&woken), deadline)) continue;
    // Past the deadline: a call in flight (say, a long upload) is cut short,
    // and the sender then gives up on everything queued.
    if (in_flight_context_ != nullptr) in_flight_context_->TryCancel();
    mu_.Await(absl::Condition(&settled));
  }
  AttemptResult result;
  if (auto record = attempts_.find(key); record != attempts_.end()) {
    result = record->second.result;
    attempts_.erase(record);
  }
  return result;
}

void Outbox::GiveUpAt(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  give_up_at_ = std::min(give_up_at_, deadline);
  interrupt_ = true;
}

void Outbox::EndAttempt(const AttemptKey& key, Settlement settlement, const std::string& reason) {
  AttemptRecord& record = attempts_[key];
  record.ended = true;
  record.result.settlement = settlement;
  record.result.reason = reason;
  RemoveQueued(key, [](const Item&) { return true; });
}

void Outbox::RemoveQueued(const AttemptKey& key, const std::function<bool(const Item&)>& which) {
  auto record = attempts_.find(key);
  for (auto it = queue_.begin() + (front_in_flight_ ? 1 : 0); it != queue_.end();) {
    if (!(it->key == key) || !which(*it)) {
      ++it;
      continue;
    }
    if (const auto* upload = std::get_if<CheckpointUpload>(&it->payload)) {
      std::remove(upload->path.c_str());
    }
    it = queue_.erase(it);
    if (record != attempts_.end()) --record->second.queued;
  }
}

void Outbox::SenderLoop() {
  while (true) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (shutdown_) return;
      item = queue_.front();
      front_in_flight_ = true;
    }
    Outcome outcome;
    const absl::Status status = Send(item, &outcome);
    bool notify = false;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      front_in_flight_ = false;
      auto record = attempts_.find(item.key);
      if (record != attempts_.end() && !record->second.ended) {
        if ((IsTransient(status) || status.code() == absl::StatusCode::kCancelled) &&
            absl::Now() >= give_up_at_) {
          // Stopping, and the coordinator stayed out of reach: nothing
          // queued will be sent (the leases expire there by themselves).
          gave_up_ = true;
          for (auto& [key, attempt] : attempts_) {
            if (!attempt.ended) {
              EndAttempt(key, Settlement::kGaveUp,
                         absl::StrCat("the coordinator was out of reach: ", status.message()));
            }
          }
        } else if (outcome.end_attempt) {
          EndAttempt(item.key, outcome.settlement, outcome.reason);
          notify = true;
        } else {
          --record->second.queued;
          if (outcome.will_retry) record->second.result.will_retry = true;
        }
      }
    }
    if (const auto* upload = std::get_if<CheckpointUpload>(&item.payload)) {
      std::remove(upload->path.c_str());
    }
    if (notify && on_attempt_ended_) {
      on_attempt_ended_(item.key, outcome.settlement, outcome.reason);
    }
  }
}

bool Outbox::SleepBeforeRetry(const AttemptKey& key, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(&interrupt_), std::min(absl::Now() + delay, give_up_at_));
  interrupt_ = false;
  auto record = attempts_.find(key);
  return !shutdown_ && absl::Now() < give_up_at_ && record != attempts_.end() &&
         !record->second.ended;
}

absl::Status Outbox::Send(const Item& item, Outcome* outcome) {
  const absl::Status status = CallWithRetry(
      options_.backoff,
      [&] {
        *outcome = Outcome{};
        return SendOnce(item, outcome);
      },
      [&](absl::Duration delay) { return SleepBeforeRetry(item.key, delay); });
  Judge(item, status, outcome);
  return status;
}

absl::Status Outbox::SendOnce(const Item& item, Outcome* outcome) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    auto record = attempts_.find(item.key);
    if (shutdown_ || record == attempts_.end() || record->second.ended) {
      return absl::CancelledError("the attempt ended");
    }
    const bool upload = std::holds_alternative<CheckpointUpload>(item.payload);
    PrepareCall(&context,
                std::min(absl::Now() + (upload ? options_.transfer_timeout : options_.rpc_timeout),
                         give_up_at_));
    in_flight_context_ = &context;
  }
  absl::Status status = SendOn(&context, item, outcome);
  absl::MutexLock lock(&mu_);
  in_flight_context_ = nullptr;
  return status;
}

absl::Status Outbox::SendOn(grpc::ClientContext* context, const Item& item, Outcome* outcome) {
  return std::visit(
      Overloaded{
          [&](const v1::ReportRendezvousRequest& request) {
            v1::ReportRendezvousResponse response;
            return FromGrpcStatus(stub_->ReportRendezvous(context, request, &response));
          },
          [&](const v1::ReportMetricsRequest& request) {
            v1::ReportMetricsResponse response;
            absl::Status status = FromGrpcStatus(stub_->ReportMetrics(context, request, &response));
            if (status.ok() && response.stop()) {
              outcome->end_attempt = true;
              outcome->settlement = Settlement::kStopped;
              outcome->reason = response.stop_reason().empty()
                                    ? std::string("stopped by the coordinator")
                                    : response.stop_reason();
            }
            return status;
          },
          [&](const CheckpointUpload& upload) { return UploadCheckpoint(*stub_, context, upload); },
          [&](const v1::FinishTrialRequest& request) {
            v1::FinishTrialResponse response;
            return FromGrpcStatus(stub_->FinishTrial(context, request, &response));
          },
          [&](const v1::FailTrialRequest& request) {
            v1::FailTrialResponse response;
            absl::Status status = FromGrpcStatus(stub_->FailTrial(context, request, &response));
            outcome->will_retry = status.ok() && response.will_retry();
            return status;
          },
      },
      item.payload);
}

void Outbox::Judge(const Item& item, const absl::Status& status, Outcome* outcome) {
  const std::string what = Describe(item.payload);
  if (status.ok()) {
    if (outcome->end_attempt) {
      Log(absl::StrCat(Name(item.key), ": the coordinator stops it after its ", what, ": ",
                       outcome->reason));
    } else if (std::holds_alternative<CheckpointUpload>(item.payload)) {
      Log(absl::StrCat(Name(item.key), ": uploaded its ", what));
    } else if (const auto* r = std::get_if<v1::ReportRendezvousRequest>(&item.payload)) {
      Log(absl::StrCat(Name(item.key), ": reported its rendezvous at ",
                       r->rendezvous().master_address(), ":", r->rendezvous().master_port()));
    }
    return;
  }
  if (IsStaleAttempt(status)) {
    outcome->end_attempt = true;
    outcome->settlement = Settlement::kStale;
    outcome->reason = std::string(status.message());
    Log(absl::StrCat(Name(item.key), " is no longer this worker's (its ", what,
                     " was refused: ", status.message(), "); stopping it"));
  } else if (IsTransient(status) || status.code() == absl::StatusCode::kCancelled) {
    Log(absl::StrCat(Name(item.key), ": its ", what, " was not delivered: ", status.ToString()));
  } else {
    Log(absl::StrCat(Name(item.key), ": the coordinator refused its ", what,
                     ", skipped: ", status.ToString()));
  }
}

}  // namespace sslsweep
