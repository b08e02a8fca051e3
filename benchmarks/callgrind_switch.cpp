// callgrind_switch: one operation repeated n times, for instruction counts under
// callgrind (benchmarks/callgrind_switch.sh runs it at two n and takes the difference,
// which removes start-up cost).
//
//   callgrind_switch MODE N
//
// MODE: greenlet_switch, raw_switch (round trip, no payload); greenlet_int, raw_int (an
// int each way); generator, raw_generator (one item); greenlet_spawn, raw_spawn (create,
// start, finish; pooled stacks on both sides).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>

#include "greenlets/generator.hpp"
#include "greenlets/greenlet.hpp"

#include "common/bench.hpp"

namespace {

namespace ctx = boost::context;
using greenlets::greenlet;

void greenlet_switch(long long n) {
  greenlet main = greenlets::current();
  greenlet echo([&main] {
    for (;;) main.switch_to();
  });
  for (long long i = 0; i < n; ++i) echo.switch_to();
}

void raw_switch(long long n) {
  ctx::fiber echo{[](ctx::fiber&& back) {
    for (;;) back = std::move(back).resume();
    return std::move(back);
  }};
  for (long long i = 0; i < n; ++i) echo = std::move(echo).resume();
}

void greenlet_int(long long n) {
  greenlet main = greenlets::current();
  greenlet echo([&main](int x) {
    for (;;) x = main.switch_to(x + 1).get<int>();
  });
  int x = 0;
  for (long long i = 0; i < n; ++i) x = echo.switch_to(x & 0xffff).get<int>();
  bench::do_not_optimize(x);
}

void raw_int(long long n) {
  std::uint64_t slot = 0;
  ctx::fiber echo{[&slot](ctx::fiber&& back) {
    for (;;) {
      slot = slot + 1;
      back = std::move(back).resume();
    }
    return std::move(back);
  }};
  for (long long i = 0; i < n; ++i) {
    slot = slot & 0xffff;
    echo = std::move(echo).resume();
    bench::do_not_optimize(slot);
  }
}

void generator(long long n) {
  greenlets::generator<int> items([](greenlets::yield<int>& yield) {
    for (int i = 0;; ++i) yield(i);
  });
  for (long long i = 0; i < n; ++i) {
    auto x = items.next();
    bench::do_not_optimize(x);
  }
}

void raw_generator(long long n) {
  int slot = 0;
  ctx::fiber producer{[&slot](ctx::fiber&& consumer) {
    for (int i = 0;; ++i) {
      slot = i;
      consumer = std::move(consumer).resume();
    }
    return std::move(consumer);
  }};
  for (long long i = 0; i < n; ++i) {
    producer = std::move(producer).resume();
    int x = slot;
    bench::do_not_optimize(x);
  }
}

void greenlet_spawn(long long n) {
  for (long long i = 0; i < n; ++i) {
    greenlet g([] {});
    g.switch_to();
    bench::do_not_optimize(g);
  }
}

void raw_spawn(long long n) {
  ctx::pooled_fixedsize_stack pool(greenlets::default_stack_size);
  for (long long i = 0; i < n; ++i) {
    ctx::fiber f{std::allocator_arg, pool, [](ctx::fiber&& back) { return std::move(back); }};
    f = std::move(f).resume();
    bench::do_not_optimize(f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODE N\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const long long n = std::atoll(argv[2]);
  if (mode == "greenlet_switch")
    greenlet_switch(n);
  else if (mode == "raw_switch")
    raw_switch(n);
  else if (mode == "greenlet_int")
    greenlet_int(n);
  else if (mode == "raw_int")
    raw_int(n);
  else if (mode == "generator")
    generator(n);
  else if (mode == "raw_generator")
    raw_generator(n);
  else if (mode == "greenlet_spawn")
    greenlet_spawn(n);
  else if (mode == "raw_spawn")
    raw_spawn(n);
  else {
    std::fprintf(stderr, "callgrind_switch: unknown mode %s\n", mode.c_str());
    return 2;
  }
  return 0;
}
