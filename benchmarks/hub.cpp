// The hub's operations, per operation, beside Boost.Fiber (round_robin, one thread)
// and gevent (/usr/bin/python3), in the same run.
//
//   hub [--n 100000] [--reps 5] [--json] [--no-python]
//
// Rows (an operation is what ns/op divides by):
//   spawn_join         spawn a task that returns at once, join it
//   spawn_sleep0_join  spawn a task that yields once, join it
//   sleep0_switch      two tasks yielding to each other: one yield
//   queue_pingpong     two tasks, two unbounded queues: one round trip
//   channel_pingpong   two tasks, two rendezvous queues: one round trip
//   event_wake         two tasks, two events: one round trip (wait, clear, set)
//   timeout_scope      arm and disarm a timeout scope (nothing blocks)
//   lock_contended     two tasks taking one lock, yielding while holding it: one lock
//   pool_map           pool(10).map over N ints: one call
//   sleepers_10k       10,000 tasks sleeping 1 ms at once, then joined: one task
// A "-" marks a peer without the operation (Boost.Fiber has no timeout scope or pool).
#include "greenlets/hub.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/fiber/all.hpp>

#include "common/bench.hpp"

using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------
// greenlets

void g_spawn_join(long long n) {
  for (long long i = 0; i < n; ++i) greenlets::spawn([] {}).join();
}

void g_spawn_sleep0_join(long long n) {
  for (long long i = 0; i < n; ++i) greenlets::spawn([] { greenlets::sleep(0s); }).join();
}

void g_sleep0_switch(long long n) {
  auto body = [n] {
    for (long long i = 0; i < n / 2; ++i) greenlets::sleep(0s);
  };
  auto a = greenlets::spawn(body);
  auto b = greenlets::spawn(body);
  a.join();
  b.join();
}

template <class Queue>
void g_pingpong(long long n, Queue& there, Queue& back) {
  auto pong = greenlets::spawn([&] {
    for (long long i = 0; i < n; ++i) back.put(there.get());
  });
  for (long long i = 0; i < n; ++i) {
    there.put(static_cast<int>(i));
    bench::do_not_optimize(back.get());
  }
  pong.join();
}

void g_queue_pingpong(long long n) {
  greenlets::queue<int> a;
  greenlets::queue<int> b;
  g_pingpong(n, a, b);
}

void g_channel_pingpong(long long n) {
  greenlets::queue<int> a(0);
  greenlets::queue<int> b(0);
  g_pingpong(n, a, b);
}

void g_event_wake(long long n) {
  greenlets::event ping;
  greenlets::event pong;
  auto partner = greenlets::spawn([&] {
    for (long long i = 0; i < n; ++i) {
      ping.wait();
      ping.clear();
      pong.set();
    }
  });
  for (long long i = 0; i < n; ++i) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  partner.join();
}

void g_timeout_scope(long long n) {
  for (long long i = 0; i < n; ++i) {
    greenlets::timeout t(1s);
    bench::clobber();
  }
}

void g_lock_contended(long long n) {
  greenlets::mutex m;
  auto body = [&] {
    for (long long i = 0; i < n / 2; ++i) {
      std::lock_guard<greenlets::mutex> lock(m);
      greenlets::sleep(0s);
    }
  };
  auto a = greenlets::spawn(body);
  auto b = greenlets::spawn(body);
  a.join();
  b.join();
}

void g_pool_map(long long n) {
  greenlets::pool p(10);
  std::vector<long long> in(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = i;
  auto out = p.map([](long long x) { return x + 1; }, in);
  bench::do_not_optimize(out.back());
}

void g_sleepers(long long n) {
  std::vector<greenlets::task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i)
    tasks.push_back(greenlets::spawn([] { greenlets::sleep(1ms); }));
  greenlets::joinall(tasks);
}

// ---------------------------------------------------------------------------
// Boost.Fiber (the default round_robin scheduler, on this thread)

namespace bf = boost::fibers;

void f_spawn_join(long long n) {
  for (long long i = 0; i < n; ++i) bf::fiber([] {}).join();
}

void f_spawn_sleep0_join(long long n) {
  for (long long i = 0; i < n; ++i) bf::fiber([] { boost::this_fiber::yield(); }).join();
}

void f_sleep0_switch(long long n) {
  auto body = [n] {
    for (long long i = 0; i < n / 2; ++i) boost::this_fiber::yield();
  };
  bf::fiber a(body);
  bf::fiber b(body);
  a.join();
  b.join();
}

template <class Channel>
void f_pingpong(long long n, Channel& there, Channel& back) {
  bf::fiber pong([&] {
    for (long long i = 0; i < n; ++i) back.push(there.value_pop());
  });
  for (long long i = 0; i < n; ++i) {
    there.push(static_cast<int>(i));
    bench::do_not_optimize(back.value_pop());
  }
  pong.join();
}

void f_queue_pingpong(long long n) {
  bf::buffered_channel<int> a(64);
  bf::buffered_channel<int> b(64);
  f_pingpong(n, a, b);
}

void f_channel_pingpong(long long n) {
  bf::unbuffered_channel<int> a;
  bf::unbuffered_channel<int> b;
  f_pingpong(n, a, b);
}

// An event as Boost.Fiber users write one: a flag under a mutex and a condition.
struct fiber_event {
  bf::mutex m;
  bf::condition_variable cv;
  bool flag = false;
  void set() {
    {
      std::lock_guard<bf::mutex> lock(m);
      flag = true;
    }
    cv.notify_all();
  }
  void wait_and_clear() {
    std::unique_lock<bf::mutex> lock(m);
    cv.wait(lock, [this] { return flag; });
    flag = false;
  }
};

void f_event_wake(long long n) {
  fiber_event ping;
  fiber_event pong;
  bf::fiber partner([&] {
    for (long long i = 0; i < n; ++i) {
      ping.wait_and_clear();
      pong.set();
    }
  });
  for (long long i = 0; i < n; ++i) {
    ping.set();
    pong.wait_and_clear();
  }
  partner.join();
}

void f_lock_contended(long long n) {
  bf::mutex m;
  auto body = [&] {
    for (long long i = 0; i < n / 2; ++i) {
      std::lock_guard<bf::mutex> lock(m);
      boost::this_fiber::yield();
    }
  };
  bf::fiber a(body);
  bf::fiber b(body);
  a.join();
  b.join();
}

void f_sleepers(long long n) {
  std::vector<bf::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) {
    fibers.emplace_back([] { boost::this_fiber::sleep_for(1ms); });
  }
  for (auto& f : fibers) f.join();
}

struct row {
  std::string name;
  std::function<void(long long)> greenlets;
  std::function<void(long long)> fiber;  // empty: no such operation
  long long n_scale_num = 1;             // this row's N = opt.n * num / den
  long long n_scale_den = 1;
  long long fixed_n = 0;  // or a fixed N
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bench::options opt = bench::parse(argc, argv, "hub", 100'000);
  bench::print_header(opt, "greenlets vs Boost.Fiber (round_robin, one thread) vs gevent");

  std::vector<row> rows = {
      {"spawn_join", g_spawn_join, f_spawn_join, 1, 1, 0},
      {"spawn_sleep0_join", g_spawn_sleep0_join, f_spawn_sleep0_join, 1, 1, 0},
      {"sleep0_switch", g_sleep0_switch, f_sleep0_switch, 1, 1, 0},
      {"queue_pingpong", g_queue_pingpong, f_queue_pingpong, 1, 1, 0},
      {"channel_pingpong", g_channel_pingpong, f_channel_pingpong, 1, 1, 0},
      {"event_wake", g_event_wake, f_event_wake, 1, 1, 0},
      {"timeout_scope", g_timeout_scope, nullptr, 1, 1, 0},
      {"lock_contended", g_lock_contended, f_lock_contended, 1, 1, 0},
      {"pool_map", g_pool_map, nullptr, 1, 1, 0},
      {"sleepers_10k", g_sleepers, f_sleepers, 1, 1, 10'000},
  };

  // gevent: the same rows at a tenth of N (it is slower), scaled back per operation.
  std::map<std::string, std::vector<double>> py;
  const long long py_n = std::max(1LL, opt.n / 10);
  if (!opt.no_python && bench::python_has("gevent")) {
    py = bench::run_python("hub.py", std::to_string(py_n) + " " + std::to_string(opt.reps));
  } else if (!opt.no_python) {
    std::fprintf(stderr, "gevent column skipped: gevent not importable in %s\n",
                 bench::python_path());
  }

  struct out_row {
    std::string name;
    double g = 0, f = 0, p = 0;  // ns per operation (0: not measured)
  };
  std::vector<out_row> table;
  for (auto& r : rows) {
    const long long n = r.fixed_n > 0 ? r.fixed_n : opt.n * r.n_scale_num / r.n_scale_den;
    bench::options o = opt;
    o.n = n;
    o.json = true;  // keeps the per-round progress lines out of the table
    bench::suite s(o);
    s.add("greenlets", r.greenlets);
    if (r.fiber) s.add("boost_fiber", r.fiber);
    s.run();
    out_row line;
    line.name = r.name;
    const double per = 1e9 / static_cast<double>(n);
    line.g = median(s.find("greenlets")->seconds) * per;
    if (const bench::result* f = s.find("boost_fiber")) line.f = median(f->seconds) * per;
    auto it = py.find(r.name);
    if (it != py.end()) {
      const long long pn = r.fixed_n > 0 ? r.fixed_n : py_n;
      line.p = median(it->second) * 1e9 / static_cast<double>(pn);
    }
    table.push_back(line);
  }

  auto cell = [](double v) {
    char buf[32];
    if (v <= 0) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return std::string(buf);
  };
  auto ratio = [](double a, double b) {
    char buf[32];
    if (a <= 0 || b <= 0) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.2fx", a / b);
    return std::string(buf);
  };
  if (opt.json) {
    std::printf(
        "{\"benchmark\": \"hub\", \"n\": %lld, \"reps\": %d, \"unit\": \"ns_per_op\", \"rows\": [",
        opt.n, opt.reps);
    for (std::size_t i = 0; i < table.size(); ++i) {
      const auto& t = table[i];
      std::printf(
          "%s\n  {\"name\": \"%s\", \"greenlets\": %.1f, \"boost_fiber\": %.1f, \"gevent\": %.1f}",
          i ? "," : "", t.name.c_str(), t.g, t.f, t.p);
    }
    std::printf("\n]}\n");
    return 0;
  }
  std::printf("\nns per operation (median of %d; gevent at N/10)\n", opt.reps);
  std::printf("%-18s %10s %12s %10s %14s %14s\n", "operation", "greenlets", "boost_fiber", "gevent",
              "fiber/greenl.", "gevent/greenl.");
  for (const auto& t : table) {
    std::printf("%-18s %10s %12s %10s %14s %14s\n", t.name.c_str(), cell(t.g).c_str(),
                cell(t.f).c_str(), cell(t.p).c_str(), ratio(t.f, t.g).c_str(),
                ratio(t.p, t.g).c_str());
  }
}
