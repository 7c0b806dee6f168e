// What the machine and the benchmark's own processes did during a measurement, for the rows of the
// tables: the load a figure was taken under, and CPU time per process, so that two builds can be
// compared by the CPU a job costs when jobs/s itself swings with the machine.
#pragma once

#include <sys/types.h>

#include <string>

namespace podworker::bench {

// The 1-minute load average (/proc/loadavg), "?" where there is none.
std::string load_average();

// User + system CPU seconds a process has used so far, all its threads (/proc/PID/stat); 0 = this
// process. Negative when the process is gone or the file cannot be read.
double process_cpu_seconds(pid_t pid = 0);

}  // namespace podworker::bench
