// patch: what the patch (greenlets/patch.hpp) costs beside the explicit API.
//
//   patch [--conns 500] [--seconds 2] [--reps 3] [--tasks 10000] [--json]
//
// 1. An echo server written with plain POSIX calls (accept, recv, send; blocking fds,
//    one task per connection) under the patch, beside the same server on the explicit
//    socket API (tcp_listener, read_some, write_all). Each server runs in a forked
//    child pinned to CPU 0; the load generator here (one epoll thread, pinned to CPU 1)
//    keeps --conns connections in a closed loop of 64-byte echoes for --seconds. Server
//    CPU per request: the child's user + system time over the window, per request.
// 2. --tasks tasks each calling usleep(10000) (patched), beside as many calling
//    greenlets::sleep(10ms): wall time and CPU time for all of them, in a child each.
//
// --json prints {"benchmark", "n", "reps", "results": [...]}: "echo_posix/<conns>" and
// "echo_explicit/<conns>" with req_per_s and server_cpu_us_per_req; "sleep_usleep" and
// "sleep_hub" with wall_s and cpu_s (medians over --reps).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <greenlets/greenlets.hpp>
#include <greenlets/patch.hpp>

#include "build_info.hpp"
#include "common/bench.hpp"
#include "common/process.hpp"

namespace {

constexpr std::size_t message_size = 64;
using clock_type = std::chrono::steady_clock;

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

void report(int fd, const std::string& line) {
  if (::write(fd, line.data(), line.size()) < 0) std::_Exit(3);
  ::close(fd);
}

// The tutorial's server in plain POSIX calls: the patch makes them cooperative.
void run_posix(int out) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(lfd, 4096);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  report(out, std::to_string(ntohs(a.sin_port)) + "\n");
  for (;;) {
    const int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) continue;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    greenlets::spawn([c] {
      char buf[4096];
      for (ssize_t r; (r = ::recv(c, buf, sizeof buf, 0)) > 0;) {
        if (::send(c, buf, static_cast<std::size_t>(r), MSG_NOSIGNAL) != r) break;
      }
      ::close(c);
    });
  }
}

// The same server on the explicit socket API.
void run_explicit(int out) {
  greenlets::tcp_listener l = greenlets::listen("127.0.0.1", 0, {4096, false});
  report(out, std::to_string(l.local_endpoint().port()) + "\n");
  for (;;) {
    greenlets::spawn(
        [](greenlets::tcp_socket c) {
          c.set_no_delay(true);
          char buf[4096];
          try {
            for (std::size_t n; (n = c.read_some(buf, sizeof buf)) != 0;) c.write_all(buf, n);
          } catch (const std::system_error&) {
          }
        },
        l.accept());
  }
}

struct child {
  pid_t pid = -1;
  std::string line;  // what it reported
};

template <class F>
child start(F run) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    pin_to(0);
    run(fds[1]);
    std::_Exit(0);
  }
  ::close(fds[1]);
  child c;
  c.pid = pid;
  char buf[256];
  for (ssize_t r; (r = ::read(fds[0], buf, sizeof buf)) > 0;)
    c.line.append(buf, static_cast<std::size_t>(r));
  ::close(fds[0]);
  return c;
}

void stop(child& c) { bench::kill_and_reap(c.pid); }

struct echo_result {
  double req_per_s = 0;
  double cpu_us_per_req = 0;
  long long errors = 0;
};

// A closed loop of 64-byte echoes on `conns` connections for `seconds`.
echo_result load(const child& srv, int conns, double seconds) {
  echo_result o;
  const auto port = static_cast<std::uint16_t>(std::atoi(srv.line.c_str()));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  std::vector<int> fds;
  for (int i = 0; i < conns; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (fd >= 0) ::close(fd);
      ++o.errors;
      continue;
    }
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    fds.push_back(fd);
  }
  char msg[message_size];
  for (std::size_t i = 0; i < message_size; ++i) msg[i] = static_cast<char>('a' + i % 26);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<std::size_t> got(fds.size(), 0);
  for (std::size_t i = 0; i < fds.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
  }
  // Warm-up: a second of load, not measured (connections accepted, tasks spawned).
  long long done = 0;
  auto run_for = [&](double secs) {
    for (int fd : fds) {
      if (::send(fd, msg, message_size, MSG_NOSIGNAL) != static_cast<ssize_t>(message_size))
        ++o.errors;
    }
    const auto end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(secs));
    std::size_t outstanding = fds.size();
    bool sending = true;
    epoll_event events[512];
    char back[message_size];
    while (outstanding > 0) {
      const int n = ::epoll_wait(ep, events, 512, 1000);
      if (n <= 0) {
        o.errors += static_cast<long long>(outstanding);
        break;
      }
      if (sending && clock_type::now() >= end) sending = false;
      for (int k = 0; k < n; ++k) {
        const std::size_t i = events[k].data.u64;
        const ssize_t r = ::read(fds[i], back, message_size - got[i]);
        if (r <= 0) continue;
        got[i] += static_cast<std::size_t>(r);
        if (got[i] < message_size) continue;
        got[i] = 0;
        ++done;
        if (!sending) {
          --outstanding;
          continue;
        }
        if (::send(fds[i], msg, message_size, MSG_NOSIGNAL) != static_cast<ssize_t>(message_size))
          ++o.errors;
      }
    }
  };
  run_for(0.5);
  done = 0;
  const double cpu0 = bench::process_cpu_us(srv.pid);
  const auto t0 = clock_type::now();
  run_for(seconds);
  const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double cpu = bench::process_cpu_us(srv.pid) - cpu0;
  for (int fd : fds) ::close(fd);
  ::close(ep);
  o.req_per_s = static_cast<double>(done) / elapsed;
  o.cpu_us_per_req = done > 0 ? cpu / static_cast<double>(done) : 0;
  return o;
}

double cpu_seconds_self() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// `tasks` tasks sleeping 10 ms each, in a child: "wall cpu" in seconds.
child sleep_run(int tasks, bool patched_usleep) {
  return start([tasks, patched_usleep](int out) {
    (void)greenlets::hub::current();
    const double c0 = cpu_seconds_self();
    const auto t0 = clock_type::now();
    for (int i = 0; i < tasks; ++i) {
      if (patched_usleep) {
        greenlets::spawn([] { ::usleep(10000); });
      } else {
        greenlets::spawn([] { greenlets::sleep(std::chrono::milliseconds(10)); });
      }
    }
    greenlets::wait();
    const double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
    const double cpu = cpu_seconds_self() - c0;
    char line[128];
    std::snprintf(line, sizeof line, "%.6f %.6f\n", wall, cpu);
    report(out, line);
  });
}

}  // namespace

int main(int argc, char** argv) {
  bench::options opt =
      bench::parse(argc, argv, "patch", 10000, " [--conns 500] [--seconds 2] [--tasks 10000]");
  if (opt.reps == 5) opt.reps = 3;
  int conns = 500;
  double seconds = 2;
  int tasks = 10000;
  for (std::size_t i = 0; i < opt.rest.size(); ++i) {
    const std::string& a = opt.rest[i];
    const bool has = i + 1 < opt.rest.size();
    if (a == "--conns" && has) {
      conns = std::atoi(opt.rest[++i].c_str());
    } else if (a == "--seconds" && has) {
      seconds = std::atof(opt.rest[++i].c_str());
    } else if (a == "--tasks" && has) {
      tasks = std::atoi(opt.rest[++i].c_str());
    } else {
      std::fprintf(stderr, "patch: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  pin_to(1);
  if (!opt.json) {
    std::printf("patch: %s build, %s, %s\n", GREENLETS_BENCH_BUILD_TYPE, bench::compiler().c_str(),
                bench::cpu_model().c_str());
    if (!bench::optimized_build()) std::printf("WARNING: not an optimised build\n");
  }

  // Interleaved repetitions: posix, explicit, posix, explicit...
  std::vector<double> posix_cpu, explicit_cpu, posix_rps, explicit_rps;
  long long errors = 0;
  for (int r = 0; r < opt.reps; ++r) {
    for (int which = 0; which < 2; ++which) {
      child srv = which == 0 ? start(run_posix) : start(run_explicit);
      const echo_result e = load(srv, conns, seconds);
      stop(srv);
      errors += e.errors;
      (which == 0 ? posix_cpu : explicit_cpu).push_back(e.cpu_us_per_req);
      (which == 0 ? posix_rps : explicit_rps).push_back(e.req_per_s);
    }
  }
  std::vector<double> us_wall, us_cpu, hub_wall, hub_cpu;
  for (int r = 0; r < opt.reps; ++r) {
    for (int which = 0; which < 2; ++which) {
      child c = sleep_run(tasks, which == 0);
      int status;
      ::waitpid(c.pid, &status, 0);
      double wall = 0, cpu = 0;
      std::sscanf(c.line.c_str(), "%lf %lf", &wall, &cpu);
      (which == 0 ? us_wall : hub_wall).push_back(wall);
      (which == 0 ? us_cpu : hub_cpu).push_back(cpu);
    }
  }
  const double pc = bench::median_of(posix_cpu), ec = bench::median_of(explicit_cpu);
  const double pr = bench::median_of(posix_rps), er = bench::median_of(explicit_rps);
  const double uw = bench::median_of(us_wall), uc = bench::median_of(us_cpu);
  const double hw = bench::median_of(hub_wall), hc = bench::median_of(hub_cpu);
  if (opt.json) {
    std::printf("{\"benchmark\": \"patch\", \"n\": %d, \"reps\": %d, \"results\": [\n", tasks,
                opt.reps);
    std::printf(
        "  {\"name\": \"echo_posix/%d\", \"req_per_s\": %.6g, \"server_cpu_us_per_req\": "
        "%.6g, \"errors\": %lld},\n",
        conns, pr, pc, errors);
    std::printf(
        "  {\"name\": \"echo_explicit/%d\", \"req_per_s\": %.6g, "
        "\"server_cpu_us_per_req\": %.6g, \"errors\": %lld},\n",
        conns, er, ec, errors);
    std::printf("  {\"name\": \"sleep_usleep\", \"wall_s\": %.6g, \"cpu_s\": %.6g},\n", uw, uc);
    std::printf("  {\"name\": \"sleep_hub\", \"wall_s\": %.6g, \"cpu_s\": %.6g}\n]}\n", hw, hc);
    return 0;
  }
  std::printf("\necho, %d connections, 64-byte ping-pong, %.1f s, median of %d (errors: %lld)\n",
              conns, seconds, opt.reps, errors);
  std::printf("  %-34s %10s %12s\n", "server", "req/s", "CPU µs/req");
  std::printf("  %-34s %10.0f %12.2f\n", "plain POSIX calls under the patch", pr, pc);
  std::printf("  %-34s %10.0f %12.2f\n", "explicit socket API", er, ec);
  std::printf("  patch / explicit, CPU per request: %.2fx (target <= 1.2x)\n", pc / ec);
  std::printf("\n%d tasks sleeping 10 ms, median of %d\n", tasks, opt.reps);
  std::printf("  %-34s %10s %10s\n", "", "wall s", "CPU s");
  std::printf("  %-34s %10.4f %10.4f\n", "usleep(10000) under the patch", uw, uc);
  std::printf("  %-34s %10.4f %10.4f\n", "greenlets::sleep(10ms)", hw, hc);
  std::printf("  patch / hub: wall %.2fx, CPU %.2fx\n", uw / hw, uc / hc);
}
