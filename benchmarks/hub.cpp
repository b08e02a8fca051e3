// hub: what the hub's operations cost (spawn, sleep(0), queues, event, timeout, mutex,
// pool, many sleepers), beside Boost.Fiber (round_robin scheduler, one thread) and
// gevent in the same run.
//
//   hub [--n 100000] [--reps 3] [--json] [--no-python] [--python-n N] [--python-reps 1]
//       [--sleepers 10000]
//       [--rows a,b,...] [--columns greenlets,boost_fiber] [--cpu] [--million]
//       [--memory-tasks N] [--memory-peer-tasks N]
//
// Rows (N = --n; every row's size is linear in N except sleepers_10k):
//   spawn_join         N tasks spawned, then all joined; per task
//   spawn_sleep0_join  the same, each task calling sleep(0) once; per task
//   sleep0_switch      two tasks calling sleep(0) N times each; per sleep(0)
//   queue_pingpong     unbounded queues: one task puts i, the other gets it and puts it
//                      back on a second queue, N times; per item (2N items)
//   channel_pingpong   the same through queue(0) (unbuffered channel, gevent's Channel)
//   event_wake         rounds of 10,000 tasks waiting on one event: spawn, let them all
//                      block, set, join; per waiter
//   timeout_scope      a timeout scope armed and left (disarmed) N times; per scope
//   lock_contended     10 tasks each lock a mutex N/10 times, holding it across a sleep(0)
//                      so the others queue behind it; per acquisition
//   pool_map           pool(100).map of N/2 trivial jobs; per job
//   sleepers_10k       10,000 tasks each sleeping 10 ms, spawned and joined: wall and CPU
//   sleepers_1m_memory (--million) 1,000,000 tasks blocked on one event: resident bytes
//                      per task (VmRSS before and after), each column in a fresh child
//                      process; Boost.Fiber and gevent at --memory-peer-tasks (100,000: a
//                      million of them would take 11 and 8 GiB)
//
// Columns: greenlets (this library's hub), boost_fiber (fibers::fiber + join,
// this_fiber::yield, buffered_channel, unbuffered_channel, condition_variable, mutex,
// sleep_for; no counterpart for timeout_scope and pool_map), gevent (python/hub.py run by
// /usr/bin/python3 after the C++ columns: the spawn and event rows at N, since their cost
// per task grows with the tasks alive at once, --python-reps times (1: they take seconds),
// the others at --python-n, N/10 by default). The C++ columns run interleaved. Three repetitions
// unless --reps says.
//
// --json prints {"benchmark", "n", "reps", "results": [...]}, one result per row and
// column named "<row>/<column>", with ns_per_op, seconds (the median of the samples, at
// the size measured: "ops" operations), min, median, cpu_seconds and cpu_ns_per_op
// (process CPU time). --cpu makes the table use CPU time, steadier on a shared machine.
// --rows and --columns pick what runs (for callgrind: --rows sleep0_switch --columns
// greenlets --reps 1 --no-python).
#include "greenlets/hub.hpp"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/unbuffered_channel.hpp>

#include "common/bench.hpp"

namespace {

namespace gl = greenlets;
namespace bf = boost::fibers;
using namespace std::chrono_literals;

constexpr long long event_round = 10'000;  // waiters per event_wake round
constexpr long long lockers = 10;          // tasks contending in lock_contended
constexpr long long pool_size = 100;
constexpr auto sleeper_time = 10ms;

long long sink;

long long identity(long long x) { return x; }

// ---------------------------------------------------------------- greenlets
// Every function does one whole job of size n from the main greenlet and returns how
// many operations it made; joining from main runs the hub until the tasks are done.

long long gl_spawn_join(long long n) {
  std::vector<gl::task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) tasks.push_back(gl::spawn([] {}));
  gl::joinall(tasks);
  return n;
}

long long gl_spawn_sleep0_join(long long n) {
  std::vector<gl::task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) tasks.push_back(gl::spawn([] { gl::sleep(0s); }));
  gl::joinall(tasks);
  return n;
}

long long gl_sleep0_switch(long long n) {
  auto loop = [n] {
    for (long long i = 0; i < n; ++i) gl::sleep(0s);
  };
  std::vector<gl::task<void>> tasks{gl::spawn(loop), gl::spawn(loop)};
  gl::joinall(tasks);
  return 2 * n;
}

long long gl_pingpong(long long n, std::size_t maxsize) {
  gl::queue<long long> there(maxsize), back(maxsize);
  std::vector<gl::task<void>> tasks{gl::spawn([&] {
                                      for (long long i = 0; i < n; ++i) {
                                        there.put(i);
                                        sink += back.get();
                                      }
                                    }),
                                    gl::spawn([&] {
                                      for (long long i = 0; i < n; ++i) back.put(there.get());
                                    })};
  gl::joinall(tasks);
  return 2 * n;
}

long long gl_queue_pingpong(long long n) { return gl_pingpong(n, gl::queue<long long>::unbounded); }
long long gl_channel_pingpong(long long n) { return gl_pingpong(n, 0); }

long long gl_event_wake(long long n) {
  const long long waiters = std::min(n, event_round);
  const long long rounds = std::max(1LL, n / waiters);
  for (long long r = 0; r < rounds; ++r) {
    gl::event ev;
    std::vector<gl::task<void>> tasks;
    tasks.reserve(static_cast<std::size_t>(waiters));
    for (long long i = 0; i < waiters; ++i) tasks.push_back(gl::spawn([&ev] { ev.wait(); }));
    gl::sleep(0s);  // every waiter starts and blocks
    ev.set();
    gl::joinall(tasks);
  }
  return rounds * waiters;
}

long long gl_timeout_scope(long long n) {
  gl::spawn([n] {
    for (long long i = 0; i < n; ++i) {
      gl::timeout t(1h);
      bench::clobber();
    }
  }).join();
  return n;
}

long long gl_lock_contended(long long n) {
  gl::mutex m;
  const long long per_task = std::max(1LL, n / lockers);
  std::vector<gl::task<void>> tasks;
  for (long long t = 0; t < lockers; ++t)
    tasks.push_back(gl::spawn([&m, per_task] {
      for (long long i = 0; i < per_task; ++i) {
        std::lock_guard<gl::mutex> hold(m);
        gl::sleep(0s);
      }
    }));
  gl::joinall(tasks);
  return lockers * per_task;
}

long long gl_pool_map(long long n) {
  std::vector<long long> jobs(static_cast<std::size_t>(std::max(1LL, n / 2)));
  std::iota(jobs.begin(), jobs.end(), 0LL);
  gl::pool p(static_cast<std::size_t>(pool_size));
  std::vector<long long> out = p.map(identity, jobs);
  sink += out.back();
  return static_cast<long long>(out.size());
}

long long gl_sleepers(long long count) {
  std::vector<gl::task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(count));
  for (long long i = 0; i < count; ++i) tasks.push_back(gl::spawn([] { gl::sleep(sleeper_time); }));
  gl::joinall(tasks);
  return count;
}

// ---------------------------------------------------------------- Boost.Fiber
// The default scheduler (round_robin) of this thread; fibers use the default stack
// allocator (fixedsize_stack, 128 KiB). join() from main runs the other fibers.

long long bf_join_all(std::vector<bf::fiber>& fibers) {
  for (auto& f : fibers) f.join();
  return static_cast<long long>(fibers.size());
}

long long bf_spawn_join(long long n) {
  std::vector<bf::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) fibers.emplace_back([] {});
  return bf_join_all(fibers);
}

long long bf_spawn_sleep0_join(long long n) {
  std::vector<bf::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) fibers.emplace_back([] { boost::this_fiber::yield(); });
  return bf_join_all(fibers);
}

long long bf_sleep0_switch(long long n) {
  auto loop = [n] {
    for (long long i = 0; i < n; ++i) boost::this_fiber::yield();
  };
  std::vector<bf::fiber> fibers;
  fibers.emplace_back(loop);
  fibers.emplace_back(loop);
  bf_join_all(fibers);
  return 2 * n;
}

template <class Channel, class... Cap>
long long bf_pingpong(long long n, Cap... capacity) {
  Channel there(capacity...), back(capacity...);
  std::vector<bf::fiber> fibers;
  fibers.emplace_back([&] {
    for (long long i = 0; i < n; ++i) {
      there.push(i);
      sink += back.value_pop();
    }
  });
  fibers.emplace_back([&] {
    for (long long i = 0; i < n; ++i) back.push(there.value_pop());
  });
  bf_join_all(fibers);
  return 2 * n;
}

long long bf_queue_pingpong(long long n) {
  // buffered_channel wants a power of two; two slots never fill in a ping-pong.
  return bf_pingpong<bf::buffered_channel<long long>>(n, std::size_t{2});
}
long long bf_channel_pingpong(long long n) {
  return bf_pingpong<bf::unbuffered_channel<long long>>(n);
}

long long bf_event_wake(long long n) {
  const long long waiters = std::min(n, event_round);
  const long long rounds = std::max(1LL, n / waiters);
  for (long long r = 0; r < rounds; ++r) {
    bf::mutex m;
    bf::condition_variable cv;
    bool set = false;
    std::vector<bf::fiber> fibers;
    fibers.reserve(static_cast<std::size_t>(waiters));
    for (long long i = 0; i < waiters; ++i)
      fibers.emplace_back([&] {
        std::unique_lock<bf::mutex> lk(m);
        cv.wait(lk, [&] { return set; });
      });
    boost::this_fiber::yield();  // every waiter starts and blocks
    {
      std::lock_guard<bf::mutex> lk(m);
      set = true;
    }
    cv.notify_all();
    bf_join_all(fibers);
  }
  return rounds * waiters;
}

long long bf_lock_contended(long long n) {
  bf::mutex m;
  const long long per_task = std::max(1LL, n / lockers);
  std::vector<bf::fiber> fibers;
  for (long long t = 0; t < lockers; ++t)
    fibers.emplace_back([&m, per_task] {
      for (long long i = 0; i < per_task; ++i) {
        std::lock_guard<bf::mutex> hold(m);
        boost::this_fiber::yield();
      }
    });
  bf_join_all(fibers);
  return lockers * per_task;
}

long long bf_sleepers(long long count) {
  std::vector<bf::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(count));
  for (long long i = 0; i < count; ++i)
    fibers.emplace_back([] { boost::this_fiber::sleep_for(sleeper_time); });
  return bf_join_all(fibers);
}

// ---------------------------------------------------------------- table

const char* const column_names[] = {"greenlets", "boost_fiber", "gevent"};
enum column_id { col_greenlets, col_boost, col_gevent, column_count };

struct cell {
  bool present = false;
  long long ops = 0;            // operations in one sample
  std::vector<double> seconds;  // wall, per sample
  std::vector<double> cpu;      // process CPU, per sample
  double bytes_per_task = -1;   // memory row only
  std::string note;
  double median() const { return bench::median_of(seconds); }
  double ns_per_op() const { return median() * 1e9 / static_cast<double>(ops); }
  double cpu_ns_per_op() const {
    return cpu.empty() ? 0 : bench::median_of(cpu) * 1e9 / static_cast<double>(ops);
  }
  // What the table shows: wall time, or CPU time with --cpu (steadier on a busy machine).
  const std::vector<double>& shown(bool use_cpu) const { return use_cpu ? cpu : seconds; }
  double shown_ns(bool use_cpu) const { return use_cpu ? cpu_ns_per_op() : ns_per_op(); }
};

struct row {
  std::string name;
  std::string per;                             // what one operation is
  std::function<long long(long long)> run[2];  // greenlets, boost_fiber (may be empty)
  bool fixed_size = false;                     // sleepers: not scaled by --n
  cell cells[column_count];
};

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

bool listed(const std::vector<std::string>& list, const std::string& name) {
  return list.empty() || std::find(list.begin(), list.end(), name) != list.end();
}

// Reads the flat JSON lines python/hub.py prints: strings, numbers, arrays of numbers.
std::map<std::string, std::vector<double>> parse_json_line(const std::string& line,
                                                           std::string& row_name) {
  std::map<std::string, std::vector<double>> fields;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < line.size() && std::strchr(" \t\r\n,:{}", line[i])) ++i;
  };
  auto read_string = [&] {
    std::string s;
    ++i;  // opening quote
    while (i < line.size() && line[i] != '"') s += line[i++];
    ++i;
    return s;
  };
  auto read_number = [&] {
    std::size_t used = 0;
    const double v = std::stod(line.substr(i), &used);
    i += used;
    return v;
  };
  while (true) {
    skip();
    if (i >= line.size() || line[i] != '"') break;
    const std::string key = read_string();
    skip();
    if (i >= line.size()) break;
    if (line[i] == '"') {
      const std::string v = read_string();
      if (key == "row") row_name = v;
    } else if (line[i] == '[') {
      ++i;
      std::vector<double>& vs = fields[key];
      while (true) {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
        if (i >= line.size() || line[i] == ']') break;
        vs.push_back(read_number());
      }
      ++i;
    } else {
      fields[key].push_back(read_number());
    }
  }
  return fields;
}

// Runs python/hub.py and returns row -> fields; empty when it failed (and says why).
std::map<std::string, std::map<std::string, std::vector<double>>> run_gevent(
    const std::string& args) {
  std::map<std::string, std::map<std::string, std::vector<double>>> out;
  const std::string cmd =
      std::string(bench::python_path()) + " " + bench::source_dir() + "/python/hub.py " + args;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    std::fprintf(stderr, "hub: could not run %s\n", cmd.c_str());
    return out;
  }
  char buf[8192];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string name;
    auto fields = parse_json_line(buf, name);
    if (!name.empty()) out[name] = std::move(fields);
  }
  if (::pclose(p) != 0) {
    std::fprintf(stderr, "hub: %s failed\n", cmd.c_str());
    out.clear();
  }
  return out;
}

// ---------------------------------------------------------------- memory (--million)

constexpr long long safety_floor_kib = 3LL * 1024 * 1024;  // 3 GiB
constexpr long long memory_batch = 10'000;

long long status_kib(const char* path, const char* key) {
  std::string line = bench::read_first_line_with(path, key);
  if (line.empty()) return -1;
  return std::stoll(line.substr(std::strlen(key)));
}

struct memory_result {
  long long tasks = 0;
  double bytes_per_task = 0;
  double seconds = 0;  // spawning until all are blocked
  std::string stopped;
};

// Spawns up to `count` tasks blocked on one event, batch by batch (each batch starts and
// blocks before the next), stopping early if MemAvailable falls under 3 GiB.
memory_result gl_memory(long long count) {
  memory_result r;
  gl::event ev;
  std::vector<gl::task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(count));
  const long long rss0 = status_kib("/proc/self/status", "VmRSS:");
  const double t0 = bench::now_seconds();
  while (static_cast<long long>(tasks.size()) < count) {
    if (status_kib("/proc/meminfo", "MemAvailable:") < safety_floor_kib) {
      r.stopped = "safety stop: MemAvailable < 3 GiB";
      break;
    }
    const long long batch = std::min(memory_batch, count - static_cast<long long>(tasks.size()));
    for (long long i = 0; i < batch; ++i) tasks.push_back(gl::spawn([&ev] { ev.wait(); }));
    gl::sleep(0s);
  }
  r.seconds = bench::now_seconds() - t0;
  const long long rss1 = status_kib("/proc/self/status", "VmRSS:");
  r.tasks = static_cast<long long>(tasks.size());
  r.bytes_per_task = static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(r.tasks);
  ev.set();
  gl::joinall(tasks);
  return r;
}

memory_result bf_memory(long long count) {
  memory_result r;
  bf::mutex m;
  bf::condition_variable cv;
  bool set = false;
  std::vector<bf::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(count));
  const long long rss0 = status_kib("/proc/self/status", "VmRSS:");
  const double t0 = bench::now_seconds();
  while (static_cast<long long>(fibers.size()) < count) {
    if (status_kib("/proc/meminfo", "MemAvailable:") < safety_floor_kib) {
      r.stopped = "safety stop: MemAvailable < 3 GiB";
      break;
    }
    const long long batch = std::min(memory_batch, count - static_cast<long long>(fibers.size()));
    for (long long i = 0; i < batch; ++i)
      fibers.emplace_back([&] {
        std::unique_lock<bf::mutex> lk(m);
        cv.wait(lk, [&] { return set; });
      });
    boost::this_fiber::yield();
  }
  r.seconds = bench::now_seconds() - t0;
  const long long rss1 = status_kib("/proc/self/status", "VmRSS:");
  r.tasks = static_cast<long long>(fibers.size());
  r.bytes_per_task = static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(r.tasks);
  {
    std::lock_guard<bf::mutex> lk(m);
    set = true;
  }
  cv.notify_all();
  bf_join_all(fibers);
  return r;
}

// Runs `measure` in a fresh child process, so no earlier run's stack pool or heap
// flatters it; the child writes its result down a pipe.
memory_result in_child(const std::function<memory_result()>& measure) {
  memory_result r;
  int fds[2];
  if (::pipe(fds) != 0) {
    r.stopped = "pipe failed";
    return r;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    memory_result c = measure();
    char buf[512];
    const int len = std::snprintf(buf, sizeof buf, "%lld %.3f %.6f %s\n", c.tasks, c.bytes_per_task,
                                  c.seconds, c.stopped.c_str());
    if (len > 0 && ::write(fds[1], buf, static_cast<std::size_t>(len)) < 0) ::_exit(1);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[512];
  ssize_t got;
  while ((got = ::read(fds[0], buf, sizeof buf)) > 0)
    text.append(buf, static_cast<std::size_t>(got));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::istringstream in(text);
  if (!(in >> r.tasks >> r.bytes_per_task >> r.seconds)) {
    r.tasks = 0;
    r.stopped = "child process failed (status " + std::to_string(status) + ")";
    return r;
  }
  std::getline(in >> std::ws, r.stopped);
  return r;
}

std::string fmt_time(double ns) {
  char buf[32];
  if (ns < 1e3)
    std::snprintf(buf, sizeof buf, "%.1f ns", ns);
  else if (ns < 1e6)
    std::snprintf(buf, sizeof buf, "%.2f us", ns / 1e3);
  else if (ns < 1e9)
    std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.3f s", ns / 1e9);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  bench::options opt = bench::parse(
      argc, argv, "hub", 100'000,
      " [--python-n N] [--python-reps R] [--sleepers N] [--rows a,b] [--columns c,d] [--cpu]\n"
      "           [--million] [--memory-tasks N] [--memory-peer-tasks N]");
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) reps_given = reps_given || std::string(argv[i]) == "--reps";
  if (!reps_given) opt.reps = 3;  // gevent at N takes a while
  long long python_n = -1;
  int python_reps = 1;
  long long sleepers = 10'000;
  long long memory_tasks = 1'000'000;
  long long memory_peer_tasks = 100'000;
  bool million = false;
  bool use_cpu = false;
  std::vector<std::string> only_rows, only_columns;
  for (std::size_t i = 0; i < opt.rest.size(); ++i) {
    const std::string& a = opt.rest[i];
    const bool has_value = i + 1 < opt.rest.size();
    if (a == "--python-n" && has_value) {
      python_n = static_cast<long long>(std::stod(opt.rest[++i]));
    } else if (a == "--python-reps" && has_value) {
      python_reps = std::max(1, std::stoi(opt.rest[++i]));
    } else if (a == "--sleepers" && has_value) {
      sleepers = static_cast<long long>(std::stod(opt.rest[++i]));
    } else if (a == "--rows" && has_value) {
      only_rows = split(opt.rest[++i]);
    } else if (a == "--columns" && has_value) {
      only_columns = split(opt.rest[++i]);
    } else if (a == "--cpu") {
      use_cpu = true;
    } else if (a == "--million") {
      million = true;
    } else if (a == "--memory-tasks" && has_value) {
      memory_tasks = static_cast<long long>(std::stod(opt.rest[++i]));
      million = true;
    } else if (a == "--memory-peer-tasks" && has_value) {
      memory_peer_tasks = static_cast<long long>(std::stod(opt.rest[++i]));
    } else {
      std::fprintf(stderr, "hub: unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (python_n < 0) python_n = std::max(100LL, opt.n / 10);
  const bool use_python =
      !opt.no_python && listed(only_columns, "gevent") && bench::python_has("gevent");

  std::vector<row> rows;
  auto add = [&](const char* name, const char* per, std::function<long long(long long)> g,
                 std::function<long long(long long)> b, bool fixed = false) {
    if (!listed(only_rows, name)) return;
    row r;
    r.name = name;
    r.per = per;
    if (listed(only_columns, "greenlets")) r.run[col_greenlets] = std::move(g);
    if (listed(only_columns, "boost_fiber")) r.run[col_boost] = std::move(b);
    r.fixed_size = fixed;
    rows.push_back(std::move(r));
  };
  add("spawn_join", "task", gl_spawn_join, bf_spawn_join);
  add("spawn_sleep0_join", "task", gl_spawn_sleep0_join, bf_spawn_sleep0_join);
  add("sleep0_switch", "sleep(0)", gl_sleep0_switch, bf_sleep0_switch);
  add("queue_pingpong", "item", gl_queue_pingpong, bf_queue_pingpong);
  add("channel_pingpong", "item", gl_channel_pingpong, bf_channel_pingpong);
  add("event_wake", "waiter", gl_event_wake, bf_event_wake);
  add("timeout_scope", "scope", gl_timeout_scope, nullptr);
  add("lock_contended", "lock", gl_lock_contended, bf_lock_contended);
  add("pool_map", "job", gl_pool_map, nullptr);
  add("sleepers_10k", "task", gl_sleepers, bf_sleepers, true);

  std::string info =
      "columns:    greenlets hub; Boost.Fiber (round_robin, one thread, 128 KiB fixedsize "
      "stacks); gevent " +
      std::string(use_python
                      ? "(/usr/bin/python3; spawn and event rows at N, " +
                            std::to_string(python_reps) +
                            " repetition(s); the others at n=" + bench::fmt_count(python_n) + ")"
                      : "(skipped)") +
      "\nsleepers:   " + bench::fmt_count(sleepers) + " tasks x sleep(10 ms), not scaled by N\n";
  bench::print_header(opt, info);
  std::FILE* log = opt.json ? stderr : stdout;

  // Memory first, each column in a child process started before this one has a hub.
  memory_result memory[column_count];
  bool memory_ran[column_count] = {};
  if (million) {
    if (listed(only_columns, "greenlets")) {
      memory[col_greenlets] = in_child([&] { return gl_memory(memory_tasks); });
      memory_ran[col_greenlets] = true;
    }
    if (listed(only_columns, "boost_fiber")) {
      memory[col_boost] = in_child([&] { return bf_memory(memory_peer_tasks); });
      memory_ran[col_boost] = true;
    }
    if (use_python) {
      auto py = run_gevent("0 0 1 1 0 " + std::to_string(memory_peer_tasks));
      auto it = py.find("sleepers_1m_memory");
      if (it != py.end() && !it->second["ops"].empty()) {
        memory[col_gevent].tasks = static_cast<long long>(it->second["ops"][0]);
        memory[col_gevent].bytes_per_task = it->second["bytes_per_task"].at(0);
        memory[col_gevent].seconds = it->second["seconds"].at(0);
        memory_ran[col_gevent] = true;
      }
    }
  }

  // Warm-up at a tenth of the size, then the C++ columns interleaved, rep by rep.
  for (row& r : rows)
    for (int c = 0; c < 2; ++c)
      if (r.run[c]) r.run[c](r.fixed_size ? sleepers : std::max(10LL, opt.n / 10));
  for (int rep = 0; rep < opt.reps; ++rep) {
    for (row& r : rows) {
      for (int c = 0; c < 2; ++c) {
        if (!r.run[c]) continue;
        cell& x = r.cells[c];
        const double c0 = cpu_seconds();
        const double t0 = bench::now_seconds();
        x.ops = r.run[c](r.fixed_size ? sleepers : opt.n);
        const double t1 = bench::now_seconds();
        x.cpu.push_back(cpu_seconds() - c0);
        x.seconds.push_back(t1 - t0);
        x.present = true;
      }
    }
    if (!opt.json) {
      std::fprintf(log, "  round %d/%d done\n", rep + 1, opt.reps);
      std::fflush(log);
    }
  }

  if (opt.no_python) {
    std::fprintf(log, "gevent column skipped (--no-python)\n");
  } else if (!use_python && listed(only_columns, "gevent")) {
    std::fprintf(log, "gevent column skipped: %s cannot import gevent (python3-gevent)\n",
                 bench::python_path());
  } else if (use_python) {
    auto py = run_gevent(std::to_string(opt.n) + " " + std::to_string(python_n) + " " +
                         std::to_string(opt.reps) + " " + std::to_string(python_reps) + " " +
                         std::to_string(sleepers));
    for (row& r : rows) {
      auto it = py.find(r.name);
      if (it == py.end() || it->second["seconds"].empty()) continue;
      cell& x = r.cells[col_gevent];
      x.present = true;
      x.ops = static_cast<long long>(it->second["ops"].at(0));
      x.seconds = it->second["seconds"];
      x.cpu = it->second["cpu_seconds"];
    }
  }

  auto ratio = [&](const row& r, int c) {
    const cell& g = r.cells[col_greenlets];
    const cell& o = r.cells[c];
    return g.present && o.present && g.shown_ns(use_cpu) > 0
               ? o.shown_ns(use_cpu) / g.shown_ns(use_cpu)
               : 0.0;
  };

  if (opt.json) {
    std::printf("{\"benchmark\": \"hub\", \"n\": %lld, \"reps\": %d, \"results\": [", opt.n,
                opt.reps);
    bool first = true;
    for (const row& r : rows) {
      for (int c = 0; c < column_count; ++c) {
        const cell& x = r.cells[c];
        if (!x.present) continue;
        std::printf(
            "%s\n  {\"name\": \"%s/%s\", \"seconds\": %.6g, \"ns_per_op\": %.6g, \"min\": %.6g, "
            "\"median\": %.6g, \"ops\": %lld",
            first ? "" : ",", r.name.c_str(), column_names[c], x.median(), x.ns_per_op(),
            bench::min_of(x.seconds), x.median(), x.ops);
        if (!x.cpu.empty())
          std::printf(", \"cpu_seconds\": %.6g, \"cpu_min\": %.6g, \"cpu_ns_per_op\": %.6g",
                      bench::median_of(x.cpu), bench::min_of(x.cpu), x.cpu_ns_per_op());
        if (c == col_greenlets) {
          if (ratio(r, col_gevent) > 0)
            std::printf(", \"x_faster_than_gevent\": %.4g", ratio(r, col_gevent));
          if (ratio(r, col_boost) > 0)
            std::printf(", \"x_faster_than_boost_fiber\": %.4g", ratio(r, col_boost));
        }
        std::printf("}");
        first = false;
      }
    }
    for (int c = 0; c < column_count; ++c) {
      if (!memory_ran[c]) continue;
      const memory_result& m = memory[c];
      std::printf(
          "%s\n  {\"name\": \"sleepers_1m_memory/%s\", \"bytes_per_task\": %.1f, \"tasks\": %lld, "
          "\"seconds\": %.6g, \"ns_per_op\": %.6g}",
          first ? "" : ",", column_names[c], m.bytes_per_task, m.tasks, m.seconds,
          m.tasks ? m.seconds * 1e9 / static_cast<double>(m.tasks) : 0.0);
      first = false;
    }
    std::printf("\n]}\n");
    bench::do_not_optimize(sink);
    return 0;
  }

  std::printf("\n%-18s %-9s %22s %22s %22s %9s %9s\n", "row", "per", "greenlets", "boost_fiber",
              "gevent", "x gevent", "x boost");
  auto show = [&](const cell& x) -> std::string {
    if (!x.present || x.shown(use_cpu).empty()) return "-";
    const double mn = bench::min_of(x.shown(use_cpu));
    return fmt_time(x.shown_ns(use_cpu)) + " (" + fmt_time(mn * 1e9 / static_cast<double>(x.ops)) +
           ")";
  };
  auto mark = [](double v, double target) -> std::string {
    if (v <= 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%s", v, v >= target ? " ok" : " MISS");
    return buf;
  };
  std::vector<std::string> missed;
  for (const row& r : rows) {
    if (r.fixed_size) continue;
    std::printf("%-18s %-9s %22s %22s %22s %9s %9s\n", r.name.c_str(), r.per.c_str(),
                show(r.cells[col_greenlets]).c_str(), show(r.cells[col_boost]).c_str(),
                show(r.cells[col_gevent]).c_str(), mark(ratio(r, col_gevent), 50).c_str(),
                mark(ratio(r, col_boost), 2).c_str());
    if (ratio(r, col_gevent) > 0 && ratio(r, col_gevent) < 50)
      missed.push_back(r.name + " vs gevent");
    if (ratio(r, col_boost) > 0 && ratio(r, col_boost) < 2)
      missed.push_back(r.name + " vs boost_fiber");
  }
  for (const row& r : rows) {
    if (!r.fixed_size) continue;
    auto total = [](const cell& x, bool cpu) -> std::string {
      if (!x.present || (cpu && x.cpu.empty())) return "-";
      const std::vector<double>& v = cpu ? x.cpu : x.seconds;
      return fmt_time(bench::median_of(v) * 1e9) + " (" + fmt_time(bench::min_of(v) * 1e9) + ")";
    };
    for (int cpu = 0; cpu < 2; ++cpu) {
      const cell& g = r.cells[col_greenlets];
      std::string target = "-";
      if (g.present) {
        const double v = bench::median_of(cpu ? g.cpu : g.seconds);
        const double limit = cpu ? 0.010 : 0.020;
        target = std::string(cpu ? "<=10ms" : "<=20ms") + (v <= limit ? " ok" : " MISS");
        if (v > limit) missed.push_back(r.name + (cpu ? " CPU" : " wall"));
      }
      std::printf("%-18s %-9s %22s %22s %22s %19s\n", (r.name + (cpu ? " cpu" : " wall")).c_str(),
                  "total", total(g, cpu).c_str(), total(r.cells[col_boost], cpu).c_str(),
                  total(r.cells[col_gevent], cpu).c_str(), target.c_str());
    }
  }
  for (int c = 0; c < column_count; ++c) {
    if (!memory_ran[c]) continue;
    const memory_result& m = memory[c];
    std::printf("%-18s %-9s %s: %.0f bytes/task over %s blocked tasks, %s to start them%s%s\n",
                "sleepers_1m_memory", "RSS", column_names[c], m.bytes_per_task,
                bench::fmt_count(m.tasks).c_str(), fmt_time(m.seconds * 1e9).c_str(),
                m.stopped.empty() ? "" : "; ", m.stopped.c_str());
  }
  std::printf(
      "\nper-op %s-time medians over %d repetitions (min in brackets); x gevent / x boost: "
      "how many\ntimes faster greenlets is, from medians. Targets: >= 50x gevent and >= 2x "
      "Boost.Fiber on\nevery row; sleepers_10k <= 20 ms wall and <= 10 ms CPU. gevent ran the "
      "spawn and event rows\nat N (%d repetition(s)), the others at n=%s.\n",
      use_cpu ? "CPU" : "wall", opt.reps, python_reps, bench::fmt_count(python_n).c_str());
  if (rows.empty())
    std::printf("no rows ran (--rows)\n");
  else if (missed.empty())
    std::printf("every target met\n");
  else
    for (const std::string& m : missed) std::printf("target missed: %s\n", m.c_str());
  bench::do_not_optimize(sink);
  return 0;
}
