// switch_overhead: the tutorial's second timing comparison. f1 does `res += i` and f2 does
// `res *= i`, each for N iterations; serially (f1(); f2();) or in two greenlets that
// switch to each other after every iteration (2N one-way switches).
//
//   switch_overhead [--n 100000000] [--reps 5] [--json] [--no-python]
//                   [--thread-n N] [--python-n N]
//
// Columns (interleaved in one process; Python in a child process):
//   serial           f1(); f2();
//   greenlet         two greenlets, g2.switch_to() / g1.switch_to() after every iteration
//   raw_fiber        the same with two boost::context::fibers resuming each other
//   threads          two std::threads handing a turn word back and forth through a futex,
//                    both pinned to one CPU with sched_setaffinity (a smaller n, scaled)
//   python_serial, python_greenlet   the tutorial's programs (a smaller n, scaled)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include <boost/context/fiber.hpp>

#include "greenlets/greenlet.hpp"

#include "common/bench.hpp"

namespace {

namespace ctx = boost::context;

std::uint64_t result_sink;

// One iteration of f1 and of f2; the barrier keeps GCC from summing in closed form.
inline void step1(std::uint64_t& res, long long i) {
  res += static_cast<std::uint64_t>(i);
  bench::do_not_optimize(res);
}
inline void step2(std::uint64_t& res, long long i) {
  res *= static_cast<std::uint64_t>(i);
  bench::do_not_optimize(res);
}

void run_serial(long long n) {
  auto f1 = [n] {
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) step1(res, i);
    result_sink += res;
  };
  auto f2 = [n] {
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) step2(res, i);
    result_sink += res;
  };
  f1();
  f2();
}

void run_greenlet(long long n) {
  greenlets::greenlet g1, g2;
  g1 = greenlets::greenlet([n, &g2] {
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) {
      step1(res, i);
      g2.switch_to();
    }
    result_sink += res;
  });
  g2 = greenlets::greenlet([n, &g1] {
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) {
      step2(res, i);
      g1.switch_to();
    }
    result_sink += res;
  });
  g1.switch_to();  // returns when f1 is done (its parent is this main greenlet)
  g2.switch_to();  // lets f2 finish its last iteration
}

void run_raw_fiber(long long n) {
  ctx::fiber to_f2;  // while f1 runs: f2's continuation
  ctx::fiber f1{[n, &to_f2](ctx::fiber&& main) {
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) {
      step1(res, i);
      to_f2 = std::move(to_f2).resume();
    }
    result_sink += res;
    return std::move(main);
  }};
  to_f2 = ctx::fiber{[n](ctx::fiber&& to_f1) {
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) {
      step2(res, i);
      to_f1 = std::move(to_f1).resume();
    }
    result_sink += res;
    return std::move(to_f1);  // the main continuation, from the last resume below
  }};
  f1 = std::move(f1).resume();
  to_f2 = std::move(to_f2).resume();
}

// Threads: each waits for its turn on a futex, does its step, hands the turn over.
std::atomic<int> turn{0};

void futex_wait(std::atomic<int>& word, int expected) {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
            nullptr, 0);
}
void futex_wake(std::atomic<int>& word) {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

int pin_cpu = -1;

void pin_this_thread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(pin_cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) std::perror("sched_setaffinity");
}

void run_threads(long long n) {
  turn.store(0);
  std::thread t1([n] {
    pin_this_thread();
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) {
      step1(res, i);
      turn.store(1, std::memory_order_release);
      futex_wake(turn);
      while (turn.load(std::memory_order_acquire) != 0) futex_wait(turn, 1);
    }
    result_sink += res;
  });
  std::thread t2([n] {
    pin_this_thread();
    std::uint64_t res = 1;
    for (long long i = 0; i < n; ++i) {
      while (turn.load(std::memory_order_acquire) != 1) futex_wait(turn, 0);
      step2(res, i);
      turn.store(0, std::memory_order_release);
      futex_wake(turn);
    }
    result_sink += res;
  });
  t1.join();
  t2.join();
}

}  // namespace

int main(int argc, char** argv) {
  bench::options opt =
      bench::parse(argc, argv, "switch_overhead", 100'000'000, " [--thread-n N] [--python-n N]");
  long long thread_n = std::max(1000LL, opt.n / 1000);
  long long python_n = std::max(1000LL, opt.n / 20);
  for (size_t i = 0; i < opt.rest.size(); ++i) {
    if (opt.rest[i] == "--thread-n" && i + 1 < opt.rest.size()) {
      thread_n = static_cast<long long>(std::stod(opt.rest[++i]));
    } else if (opt.rest[i] == "--python-n" && i + 1 < opt.rest.size()) {
      python_n = static_cast<long long>(std::stod(opt.rest[++i]));
    } else {
      std::fprintf(stderr, "switch_overhead: unknown option %s (try --help)\n",
                   opt.rest[i].c_str());
      return 2;
    }
  }
  thread_n = std::min(thread_n, opt.n);
  python_n = std::min(python_n, opt.n);

  {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) {
          pin_cpu = c;
          break;
        }
    if (pin_cpu < 0) pin_cpu = 0;
  }

  std::string info =
      "method:     f1: res += i, f2: res *= i, N iterations each; switched columns make 2N "
      "one-way switches\n"
      "threads:    both threads pinned to CPU " +
      std::to_string(pin_cpu) + " with sched_setaffinity inside this binary (futex hand-off), n=" +
      bench::fmt_count(thread_n) +
      ", scaled to N\n"
      "python:     n=" +
      bench::fmt_count(python_n) + ", scaled to N (Python is linear in N)\n";
  bench::print_header(opt, info);

  bench::suite s(opt);
  s.add("serial", run_serial);
  s.add("greenlet", run_greenlet);
  s.add("raw_fiber", run_raw_fiber);
  s.add("threads", run_threads, 1, thread_n, "serial", "2 threads, futex, pinned to 1 CPU");
  s.run();

  const bool python_ok = !opt.no_python && bench::python_has("greenlet");
  if (opt.no_python) {
    std::fprintf(opt.json ? stderr : stdout, "Python columns skipped (--no-python)\n");
  } else if (!python_ok) {
    std::fprintf(opt.json ? stderr : stdout,
                 "Python columns skipped: %s cannot import greenlet (python3-greenlet)\n",
                 bench::python_path());
  } else {
    auto py = bench::run_python("switch_overhead.py",
                                std::to_string(python_n) + " " + std::to_string(opt.reps));
    if (py.count("python_serial"))
      s.add_samples("python_serial", py["python_serial"], python_n, 1, "python_serial",
                    "the tutorial's f1(); f2()");
    if (py.count("python_greenlet"))
      s.add_samples("python_greenlet", py["python_greenlet"], python_n, 1, "python_serial",
                    "the tutorial's two greenlets");
  }

  const double nn = static_cast<double>(opt.n);
  auto per_switch = [&](const char* name, const char* serial) {
    const bench::result* r = s.find(name);
    const bench::result* base = s.find(serial);
    if (!r || !base) return;
    s.set_extra(name, "ns_per_switch", (r->median() - base->median()) * 1e9 / (2 * nn));
  };
  per_switch("greenlet", "serial");
  per_switch("raw_fiber", "serial");
  per_switch("threads", "serial");
  per_switch("python_greenlet", "python_serial");

  bench::do_not_optimize(result_sink);
  s.print("iter", "ns_per_switch");
  if (!opt.json) {
    std::printf(
        "ns/iter covers one i of both f1 and f2; ns_per_switch = (switched - serial) / 2N, "
        "medians.\n"
        "the tutorial (its machine, N=1e8): Python serial 10.99 s vs greenlet 52.76 s "
        "(4.80x)\n");
    const bench::result* g = s.find("greenlet");
    const bench::result* pg = s.find("python_greenlet");
    const bench::result* t = s.find("threads");
    auto sw = [&](const bench::result* r) { return r ? r->extra.at("ns_per_switch") : 0.0; };
    if (g && pg)
      std::printf("greenlet vs Python greenlet, per switch: %.1fx faster\n", sw(pg) / sw(g));
    if (g && t)
      std::printf("greenlet vs pinned OS-thread ping-pong, per switch: %.1fx faster\n",
                  sw(t) / sw(g));
  }
  return 0;
}
