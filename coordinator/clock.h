// Clock: the coordinator's only source of time, so that tests drive leases
// and heartbeats with a FakeClock instead of sleeping.
//
// Thread contract: SystemClock is stateless; FakeClock is thread-safe.

#ifndef SSLSWEEP_COORDINATOR_CLOCK_H_
#define SSLSWEEP_COORDINATOR_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sslsweep {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() = 0;
};

class SystemClock : public Clock {
 public:
  int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'000'000) : now_ms_(start_ms) {}
  int64_t NowMs() override { return now_ms_.load(); }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace sslsweep

#endif  // SSLSWEEP_COORDINATOR_CLOCK_H_
