// OpenBLAS's worker threads: started from a pool thread, sized like LibTorch's (see the .cc).
#pragma once

namespace vggn {

/**
 * Stops the worker threads of every OpenBLAS loaded in the process, so that
 * OpenBLAS restarts them from the first (lower-priority) pool thread that calls
 * it. Returns how many OpenBLAS copies were found. No-op without OpenBLAS.
 */
int restartBlasThreadsLazily();

/**
 * OpenBLAS threads per call, following LibTorch's intra-op setting (at most the
 * pool OpenBLAS started with). Call from a pool thread, not the JS thread.
 */
void applyBlasThreads(int n);

}  // namespace vggn
