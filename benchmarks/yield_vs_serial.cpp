// yield_vs_serial: the tutorial's first timing comparison. A producer of N ints and a consumer
// that uses each one, either one after the other (a vector in between) or handing over
// every item through a switch.
//
//   yield_vs_serial [--n 10000000] [--reps 5] [--json] [--no-python]
//
// Columns (run interleaved in one process; Python in a child process):
//   serial      push_back N ints into a std::vector (no reserve), then consume them
//   greenlet    a consumer greenlet fed by switch_to(i)
//   generator   greenlets::generator<int>, consumed with a range-for
//   raw_fiber   a boost::context::fiber consumer fed through a shared slot
//   coroutine2  boost::coroutines2::coroutine<int>::pull_type, consumed with a range-for
//   python_*    the tutorial's programs (list vs generator send) under /usr/bin/python3
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports a "maybe uninitialized" state flag deep inside coroutines2's own
// headers (inlined into this file), which -Werror would turn into a failed build.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>
#include <boost/coroutine2/coroutine.hpp>

#include "greenlets/generator.hpp"
#include "greenlets/greenlet.hpp"

#include "common/bench.hpp"

namespace {

namespace ctx = boost::context;

// The consumer's work on one item: add it up, through a barrier so the loop stays a loop.
std::uint64_t sink;
inline void consume(int x) {
  std::uint64_t s = sink + static_cast<std::uint64_t>(x);
  bench::do_not_optimize(s);
  sink = s;
}

void run_serial(long long n) {
  std::vector<int> items;
  for (long long i = 0; i < n; ++i) items.push_back(static_cast<int>(i));
  for (int x : items) consume(x);
}

void run_greenlet(long long n) {
  greenlets::greenlet main = greenlets::current();
  greenlets::greenlet consumer([&main](int first) {
    consume(first);
    for (;;) {
      greenlets::value v = main.switch_to();
      if (!v.has_value()) return;
      consume(v.get<int>());
    }
  });
  for (long long i = 0; i < n; ++i) consumer.switch_to(static_cast<int>(i));
  consumer.switch_to();  // an empty value ends the consumer
}

void run_generator(long long n) {
  greenlets::generator<int> items([n](greenlets::yield<int>& yield) {
    for (long long i = 0; i < n; ++i) yield(static_cast<int>(i));
  });
  for (int x : items) consume(x);
}

void run_raw_fiber(long long n) {
  int slot = 0;
  bool done = false;
  ctx::fiber consumer{[&slot, &done](ctx::fiber&& producer) {
    for (;;) {
      producer = std::move(producer).resume();
      if (done) return std::move(producer);
      consume(slot);
    }
  }};
  consumer = std::move(consumer).resume();  // runs to its first wait
  for (long long i = 0; i < n; ++i) {
    slot = static_cast<int>(i);
    consumer = std::move(consumer).resume();
  }
  done = true;
  consumer = std::move(consumer).resume();
}

void run_coroutine2(long long n) {
  using coro = boost::coroutines2::coroutine<int>;
  coro::pull_type items([n](coro::push_type& yield) {
    for (long long i = 0; i < n; ++i) yield(static_cast<int>(i));
  });
  for (int x : items) consume(x);
}

}  // namespace

int main(int argc, char** argv) {
  bench::options opt = bench::parse(argc, argv, "yield_vs_serial", 10'000'000);
  std::string info =
      "method:     a producer of N ints, a consumer that adds each one up; C++ columns "
      "interleaved in this process\n";
  bench::print_header(opt, info);

  bench::suite s(opt);
  s.add("serial", run_serial);
  s.add("greenlet", run_greenlet);
  s.add("generator", run_generator);
  s.add("raw_fiber", run_raw_fiber);
  s.add("coroutine2", run_coroutine2, 1, 0, "serial", "pull_type, default fixedsize stack");
  s.run();

  if (opt.no_python) {
    std::fprintf(opt.json ? stderr : stdout, "Python columns skipped (--no-python)\n");
  } else if (!bench::python_has("sys")) {
    std::fprintf(opt.json ? stderr : stdout, "Python columns skipped: %s not found\n",
                 bench::python_path());
  } else {
    auto py = bench::run_python("yield_vs_serial.py",
                                std::to_string(opt.n) + " " + std::to_string(opt.reps));
    const char* where = "separate process, after the C++ columns";
    if (py.count("python_serial"))
      s.add_samples("python_serial", py["python_serial"], opt.n, 1, "python_serial",
                    std::string("the tutorial's list program; ") + where);
    if (py.count("python_generator"))
      s.add_samples("python_generator", py["python_generator"], opt.n, 1, "python_serial",
                    "the tutorial's generator send program");
    if (py.count("python_greenlet"))
      s.add_samples("python_greenlet", py["python_greenlet"], opt.n, 1, "python_serial",
                    "greenlet consumer fed by g.switch(i) (extra)");
    else
      std::fprintf(opt.json ? stderr : stdout,
                   "python_greenlet skipped: greenlet not importable in %s\n",
                   bench::python_path());
  }
  bench::do_not_optimize(sink);
  s.print("item");
  if (!opt.json)
    std::printf("the tutorial (its machine): Python serial 1.55 s vs yield 2.03 s (1.31x)\n");
  return 0;
}
