// micro: the costs users weigh, one operation at a time, with Google Benchmark; the raw
// Boost.Context fiber doing the same thing runs beside each.
//
//   micro [--reps 5] [--json] [--benchmark_filter=REGEX] [--benchmark_min_time=0.2] ...
//
// Every benchmark is registered once per repetition and the repetitions are interleaved
// (all benchmarks, then all again), so noise falls on peers alike. After Google
// Benchmark's own lines comes a summary: min and median ns per operation over the
// repetitions and the ratio to the raw fiber peer. --n is ignored here (Google Benchmark
// picks the iteration counts).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>

#include "greenlets/generator.hpp"
#include "greenlets/greenlet.hpp"

#include "common/bench.hpp"

namespace {

namespace ctx = boost::context;
using greenlets::greenlet;
using greenlets::value;

// ---- greenlets ------------------------------------------------------------------------

void switch_empty(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet echo([&main] {
    for (;;) main.switch_to();
  });
  echo.switch_to();
  for (auto _ : state) echo.switch_to();
}

void switch_int(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet echo([&main](int x) {
    for (;;) x = main.switch_to(x + 1).get<int>();
  });
  int x = 0;
  for (auto _ : state) {
    x = echo.switch_to(x).get<int>();
    bench::do_not_optimize(x);
  }
}

void switch_string(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet echo([&main](std::string s) {
    for (;;) s = main.switch_to(std::move(s)).get<std::string>();
  });
  // Longer than any small-string buffer, so moving it is what is measured, not copying.
  std::string s(48, 'x');
  for (auto _ : state) {
    s = echo.switch_to(std::move(s)).get<std::string>();
    bench::do_not_optimize(s);
  }
}

void switch_three_args(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet echo([&main](int a, double b, long c) {
    for (;;) {
      value v = main.switch_to(a + static_cast<int>(b) + static_cast<int>(c));
      std::tie(a, b, c) = v.get<int, double, long>();
    }
  });
  int r = 0;
  for (auto _ : state) {
    r = echo.switch_to(r & 7, 2.0, 3L).get<int>();
    bench::do_not_optimize(r);
  }
}

struct ping {};

void throw_to_round_trip(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet catcher([&main] {
    for (;;) {
      try {
        main.switch_to();
      } catch (const ping&) {
      }
    }
  });
  catcher.switch_to();
  for (auto _ : state) catcher.throw_to(ping{});
}

void spawn_with(benchmark::State& state, const greenlets::stack_allocator& alloc) {
  greenlets::options opts;
  opts.allocator = alloc;
  for (auto _ : state) {
    greenlet g([] {}, opts);
    g.switch_to();
    bench::do_not_optimize(g);
  }
}

void spawn_default(benchmark::State& state) {
  for (auto _ : state) {
    greenlet g([] {});
    g.switch_to();
    bench::do_not_optimize(g);
  }
}
void spawn_pooled(benchmark::State& state) { spawn_with(state, greenlets::pooled_stacks()); }
void spawn_guarded(benchmark::State& state) { spawn_with(state, greenlets::guarded_stacks()); }
void spawn_malloc(benchmark::State& state) { spawn_with(state, greenlets::malloc_stacks()); }

void generator_item(benchmark::State& state) {
  greenlets::generator<int> items([](greenlets::yield<int>& yield) {
    for (int i = 0;; ++i) yield(i);
  });
  for (auto _ : state) {
    auto x = items.next();
    bench::do_not_optimize(x);
  }
}

// ---- shaped like user code ------------------------------------------------------------
// The loop sits in a function of its own that the compiler may not inline, as a user's
// would, and the greenlet's lambda captures the main handle by reference.

[[gnu::noinline]] void user_loop(benchmark::State& state, greenlet& echo) {
  for (auto _ : state) echo.switch_to();
}

[[gnu::noinline]] void user_loop_int(benchmark::State& state, greenlet& echo) {
  int x = 0;
  for (auto _ : state) {
    x = echo.switch_to(x).get<int>();
    bench::do_not_optimize(x);
  }
}

void user_switch_empty(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet echo([&main] {
    for (;;) main.switch_to();
  });
  echo.switch_to();
  user_loop(state, echo);
}

void user_switch_int(benchmark::State& state) {
  greenlet main = greenlets::current();
  greenlet echo([&main](int x) {
    for (;;) x = main.switch_to(x + 1).get<int>();
  });
  user_loop_int(state, echo);
}

[[gnu::noinline]] void raw_user_loop(benchmark::State& state, ctx::fiber& echo) {
  for (auto _ : state) echo = std::move(echo).resume();
}

void raw_user_round_trip(benchmark::State& state) {
  ctx::fiber echo{[](ctx::fiber&& back) {
    for (;;) back = std::move(back).resume();
    return std::move(back);
  }};
  raw_user_loop(state, echo);
}

// ---- raw Boost.Context peers ----------------------------------------------------------

void raw_round_trip(benchmark::State& state) {
  ctx::fiber echo{[](ctx::fiber&& back) {
    for (;;) back = std::move(back).resume();
    return std::move(back);
  }};
  for (auto _ : state) echo = std::move(echo).resume();
  // `echo` never returns: unwinding it at destruction is Boost's forced_unwind.
}

void raw_round_trip_int(benchmark::State& state) {
  std::uint64_t slot = 0;
  ctx::fiber echo{[&slot](ctx::fiber&& back) {
    for (;;) {
      slot = slot + 1;
      back = std::move(back).resume();
    }
    return std::move(back);
  }};
  for (auto _ : state) {
    slot = slot & 0xffff;
    echo = std::move(echo).resume();
    bench::do_not_optimize(slot);
  }
}

void raw_generator_item(benchmark::State& state) {
  int slot = 0;
  ctx::fiber producer{[&slot](ctx::fiber&& consumer) {
    for (int i = 0;; ++i) {
      slot = i;
      consumer = std::move(consumer).resume();
    }
    return std::move(consumer);
  }};
  for (auto _ : state) {
    producer = std::move(producer).resume();
    int x = slot;
    bench::do_not_optimize(x);
  }
}

void raw_spawn_pooled(benchmark::State& state) {
  // The same stack size as a greenlet's default, from Boost's own pool.
  ctx::pooled_fixedsize_stack pool(greenlets::default_stack_size);
  for (auto _ : state) {
    ctx::fiber f{std::allocator_arg, pool, [](ctx::fiber&& back) { return std::move(back); }};
    f = std::move(f).resume();
    bench::do_not_optimize(f);
  }
}

void raw_spawn_fixedsize(benchmark::State& state) {
  ctx::fixedsize_stack alloc(greenlets::default_stack_size);
  for (auto _ : state) {
    ctx::fiber f{std::allocator_arg, alloc, [](ctx::fiber&& back) { return std::move(back); }};
    f = std::move(f).resume();
    bench::do_not_optimize(f);
  }
}

struct entry {
  const char* name;
  void (*fn)(benchmark::State&);
  const char* peer;  // the raw fiber row it is compared with
};

const std::vector<entry>& entries() {
  static const std::vector<entry> list = {
      {"raw_fiber/round_trip", raw_round_trip, "raw_fiber/round_trip"},
      {"greenlet/switch_round_trip/empty", switch_empty, "raw_fiber/round_trip"},
      {"raw_fiber/round_trip_int", raw_round_trip_int, "raw_fiber/round_trip_int"},
      {"greenlet/switch_round_trip/int", switch_int, "raw_fiber/round_trip_int"},
      {"raw_fiber/user_round_trip", raw_user_round_trip, "raw_fiber/user_round_trip"},
      {"greenlet/user_round_trip/empty", user_switch_empty, "raw_fiber/user_round_trip"},
      {"greenlet/user_round_trip/int", user_switch_int, "raw_fiber/user_round_trip"},
      {"greenlet/switch_round_trip/string", switch_string, "raw_fiber/round_trip"},
      {"greenlet/switch_round_trip/three_args", switch_three_args, "raw_fiber/round_trip"},
      {"greenlet/throw_to_round_trip", throw_to_round_trip, "raw_fiber/round_trip"},
      {"raw_fiber/generator_item", raw_generator_item, "raw_fiber/generator_item"},
      {"greenlet/generator_item", generator_item, "raw_fiber/generator_item"},
      {"raw_fiber/spawn_pooled_fixedsize", raw_spawn_pooled, "raw_fiber/spawn_pooled_fixedsize"},
      {"raw_fiber/spawn_fixedsize", raw_spawn_fixedsize, "raw_fiber/spawn_pooled_fixedsize"},
      {"greenlet/spawn/default", spawn_default, "raw_fiber/spawn_pooled_fixedsize"},
      {"greenlet/spawn/pooled_stacks", spawn_pooled, "raw_fiber/spawn_pooled_fixedsize"},
      {"greenlet/spawn/guarded_stacks", spawn_guarded, "raw_fiber/spawn_pooled_fixedsize"},
      {"greenlet/spawn/malloc_stacks", spawn_malloc, "raw_fiber/spawn_pooled_fixedsize"},
  };
  return list;
}

// Shows Google Benchmark's usual lines and keeps every repetition's ns per operation.
class collecting_reporter : public benchmark::ConsoleReporter {
 public:
  explicit collecting_reporter(OutputOptions opts) : ConsoleReporter(opts) {}

  std::map<std::string, std::vector<double>> samples;
  std::vector<std::string> order;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      std::string name = r.run_name.function_name;
      if (!samples.count(name)) order.push_back(name);
      samples[name].push_back(r.GetAdjustedRealTime());  // ns: every entry uses kNanosecond
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  bench::options opt =
      bench::parse(argc, argv, "micro", 1, " [--benchmark_* options of Google Benchmark]");
  std::vector<char*> gb_argv{argv[0]};
  for (auto& a : opt.rest) gb_argv.push_back(a.data());
  int gb_argc = static_cast<int>(gb_argv.size());
  benchmark::Initialize(&gb_argc, gb_argv.data());
  if (benchmark::ReportUnrecognizedArguments(gb_argc, gb_argv.data())) return 2;

  std::string info =
      "method:     Google Benchmark " + std::string("(libbenchmark)") +
      ", every benchmark registered once per repetition, repetitions interleaved; "
      "ns per operation; --n is not used\n"
      "note:       Debian's libbenchmark prints \"Library was built as DEBUG\": that is the "
      "Google Benchmark library itself (packaged without NDEBUG), not this binary\n";
  bench::print_header(opt, info);

  for (int rep = 0; rep < opt.reps; ++rep)
    for (const entry& e : entries())
      benchmark::RegisterBenchmark(e.name, e.fn)->Unit(benchmark::kNanosecond);

  // A reporter passed in is not told of --benchmark_color: colour only on a terminal
  // (a log or a pipe gets no escape codes), unless the flag says otherwise.
  bool colour = !opt.json && ::isatty(STDOUT_FILENO) != 0;
  for (const std::string& a : opt.rest) {
    if (a.rfind("--benchmark_color=", 0) != 0) continue;
    const std::string v = a.substr(sizeof "--benchmark_color=" - 1);
    if (v == "false" || v == "no" || v == "0") colour = false;
    if (v == "true" || v == "yes" || v == "1") colour = true;
  }
  collecting_reporter reporter(colour ? benchmark::ConsoleReporter::OO_Defaults
                                      : benchmark::ConsoleReporter::OO_Tabular);
  if (opt.json) {
    reporter.SetOutputStream(&std::cerr);
    reporter.SetErrorStream(&std::cerr);
  }
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  auto peer_of = [](const std::string& name) -> std::string {
    for (const entry& e : entries())
      if (name == e.name) return e.peer;
    return "";
  };
  auto med = [&](const std::string& name) {
    auto it = reporter.samples.find(name);
    return it == reporter.samples.end() ? 0.0 : bench::median_of(it->second);
  };

  if (opt.json) {
    std::printf("{\"benchmark\": \"micro\", \"n\": 0, \"reps\": %d, \"results\": [", opt.reps);
    bool first = true;
    for (const std::string& name : reporter.order) {
      const auto& v = reporter.samples[name];
      const std::string peer = peer_of(name);
      std::printf(
          "%s\n  {\"name\": \"%s\", \"seconds\": %.6g, \"ns_per_op\": %.6g, "
          "\"min\": %.6g, \"median\": %.6g, \"peer\": \"%s\", \"ratio_to_peer\": %.6g}",
          first ? "" : ",", name.c_str(), bench::median_of(v) * 1e-9, bench::median_of(v),
          bench::min_of(v), bench::median_of(v), peer.c_str(),
          med(peer) > 0 ? bench::median_of(v) / med(peer) : 0.0);
      first = false;
    }
    std::printf("\n]}\n");
    return 0;
  }

  std::printf("\nsummary over %d interleaved repetitions (ns per operation)\n", opt.reps);
  std::printf("%-40s %10s %10s %12s %12s\n", "benchmark", "min", "median", "÷round_trip",
              "÷raw peer");
  const double rt = med("raw_fiber/round_trip");
  for (const std::string& name : reporter.order) {
    const auto& v = reporter.samples[name];
    const double m = bench::median_of(v);
    const std::string peer = peer_of(name);
    std::printf("%-40s %10.2f %10.2f %12.2f", name.c_str(), bench::min_of(v), m,
                rt > 0 ? m / rt : 0.0);
    if (med(peer) > 0)
      std::printf(" %12.2f  (%s)\n", m / med(peer), peer.c_str());
    else
      std::printf(" %12s\n", "-");
  }
  std::printf(
      "÷round_trip: against raw_fiber/round_trip (two fixedsize-stack fibers resuming each "
      "other); ÷raw peer: against the raw fiber row doing the same job (medians).\n");
  return 0;
}
