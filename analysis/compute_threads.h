// The process's compute thread count, for every program that runs LibTorch
// (the trainer, sslsweep-analyze, the benchmarks).
//
// Thread contract: process-wide; call once at start-up, before any tensor
// work, from the main thread.

#ifndef SSLSWEEP_ANALYSIS_COMPUTE_THREADS_H_
#define SSLSWEEP_ANALYSIS_COMPUTE_THREADS_H_

namespace sslsweep {

// Sets LibTorch's intra-op threads and OpenBLAS's own pool, which LibTorch
// does not size: left alone, OpenBLAS runs one spinning thread per core
// beside a one-thread trainer (measured: 52 CPU-seconds for 33 s of wall
// time). OpenBLAS is looked up at run time because the BLAS behind
// libblas.so.3 is whatever Debian's alternatives chose. threads <= 0 means
// one per logical core (LibTorch's own default counts physical cores only,
// which leaves half of a hyper-threaded machine idle).
void SetComputeThreads(int threads);

}  // namespace sslsweep

#endif  // SSLSWEEP_ANALYSIS_COMPUTE_THREADS_H_
