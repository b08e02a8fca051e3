// 08 — Serial vs generator: handing items over one at a time costs a switch each.
//
// A producer fills a list and a consumer then takes it (serial), against a consumer
// generator that receives each number by send() (concurrent). The tutorial's point:
// switching alone does not make anything faster (its times: 1.55 s serial, 2.03 s with
// yield, for N = 10,000,000). Here N is small so the example runs quickly; the real
// comparison (N = 10,000,000, with a raw Boost.Context fiber beside it) is
// benchmarks/yield_vs_serial.
//
// The times vary from run to run: in the expected output below, `{number}` matches any
// number (see examples/check_output.cmake); every other character is compared exactly.
//
// Retells the introduction of the tutorial's coroutine chapter. The Python programs:
//
//   # serial
//   import time
//   def consumer(res):
//       '''task 1: receive the data and process it'''
//       pass
//
//   def producer():
//       '''task 2: produce the data'''
//       res = []
//       for i in range(10000000):
//           res.append(i)
//       return res
//
//   start = time.time()
//   res = producer()
//   consumer(res)
//   stop = time.time()
//   print(stop - start)  # 1.5536692142486572
//
//   # concurrently, through yield
//   import time
//   def consumer():
//       '''task 1: receive the data and process it'''
//       while True:
//           x = yield
//
//   def producer():
//       '''task 2: produce the data'''
//       g = consumer()
//       next(g)
//       for i in range(10000000):
//           g.send(i)
//
//   start = time.time()
//   producer()
//   stop = time.time()
//   print(stop - start)  # 2.0272178649902344
#include <chrono>
#include <iostream>
#include <optional>
#include <vector>

#include <greenlets/generator.hpp>

constexpr long N = 1000000;

// Seconds since `start`.
double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main() {
  std::cout << "N = " << N << '\n';

  // Serial. Python: res = producer(); consumer(res)
  {
    auto start = std::chrono::steady_clock::now();
    std::vector<long> res;  // task 2: produce all the data first...
    for (long i = 0; i < N; ++i) res.push_back(i);
    long sum = 0;  // ...task 1: then receive and process it
    for (long x : res) sum += x;
    double seconds = since(start);
    std::cout << "serial: " << seconds << " s (sum " << sum << ")\n";
  }

  // Through a generator. Python: def consumer(): while True: x = yield
  {
    long sum = 0;
    // generator<void, S>: this consumer yields no item (a bare yield) and accepts
    // longs by send().
    greenlets::generator<void, long> consumer([&sum](greenlets::yield<void, long>& yield) {
      for (;;) sum += yield().value_or(0);  // x = yield; process x
    });
    auto start = std::chrono::steady_clock::now();
    consumer.next();  // Python: next(g) — run the consumer to its first yield
    for (long i = 0; i < N; ++i) consumer.send(i);  // one switch there and back per item
    double seconds = since(start);
    std::cout << "yield:  " << seconds << " s (sum " << sum << ")\n";
  }
  std::cout << "The full comparison: benchmarks/yield_vs_serial\n";
}

// Expected output:
// N = 1000000
// serial: {number} s (sum 499999500000)
// yield:  {number} s (sum 499999500000)
// The full comparison: benchmarks/yield_vs_serial
