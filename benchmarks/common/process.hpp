// What the benchmarks that run a server in a forked child (echo, patch) need of it: its
// CPU time, and stopping it.
#ifndef GREENLETS_BENCH_COMMON_PROCESS_HPP
#define GREENLETS_BENCH_COMMON_PROCESS_HPP

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace bench {

// User + system CPU of a process and all its threads, in µs (/proc/<pid>/stat).
inline double process_cpu_us(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: the fields start after its closing parenthesis.
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Kills a child process and reaps it.
inline void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
}

}  // namespace bench

#endif  // GREENLETS_BENCH_COMMON_PROCESS_HPP
