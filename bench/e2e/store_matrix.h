// bench_e2e's store table: the echo handler through the in-process endpoint on the memory store, on
// a Redis store (redis-server started on a free port), and on two Redis-backed replicas; with
// redis-benchmark's figures on the same machine as the limit line, and an open-loop row at a fixed
// arrival rate for podworker's worker and the runpod-python SDK's.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace podworker::bench {

struct MatrixOptions {
  std::string worker;
  std::string python;  // empty: no SDK open-loop row
  std::string sdk_script;
  std::vector<std::string> stores{"memory", "redis"};
  std::vector<int> replicas{1, 2};
  std::vector<int> concurrency{1, 8, 64};
  double seconds = 2.0;
  unsigned client_threads = 2;
  unsigned server_threads = 2;
  double open_rate = 50;  // jobs/s of the open-loop rows; 0 = none
  double open_seconds = 4;
  // How long a finished /runsync job is kept (0: the endpoint's default, 60 s). Shorter than the
  // window, the rows include the removal of ended jobs, which a long run pays for every job.
  long runsync_retention_ms = 0;
  std::filesystem::path logs;
  std::string json;  // --json FILE: the tables written there too; empty: not
};

// Prints the tables; returns the process exit status.
int run_store_matrix(const MatrixOptions& options);

}  // namespace podworker::bench
