// 09 — Serial vs switched loops: the cost of switching for its own sake.
//
// f1 adds and f2 multiplies over a loop, run one after the other, then as two greenlets
// that switch to each other after every iteration. Switching without waiting for
// anything only slows a program down: the tutorial measured 10.99 s against 52.76 s in
// Python for N = 100,000,000. N is small here so the example runs quickly; the real
// comparison (raw Boost.Context fibers and OS threads beside it) is
// benchmarks/switch_overhead.
//
// The times vary from run to run: in the expected output below, `{number}` matches any
// number (see examples/check_output.cmake); every other character is compared exactly.
//
// Retells the tutorial's greenlet chapter, where it shows that pure switching is slower.
// The Python programs:
//
//   # in sequence
//   import time
//   def f1():
//       res = 1
//       for i in range(100000000):
//           res += i
//
//   def f2():
//       res = 1
//       for i in range(100000000):
//           res *= i
//
//   start = time.time()
//   f1()
//   f2()
//   stop = time.time()
//   print('run time is %s' % (stop - start))  # 10.985628366470337
//
//   # switching
//   from greenlet import greenlet
//   import time
//   def f1():
//       res = 1
//       for i in range(100000000):
//           res += i
//           g2.switch()
//
//   def f2():
//       res = 1
//       for i in range(100000000):
//           res *= i
//           g1.switch()
//
//   start = time.time()
//   g1 = greenlet(f1)
//   g2 = greenlet(f2)
//   g1.switch()
//   stop = time.time()
//   print('run time is %s' % (stop - start))  # 52.763017892837524
#include <chrono>
#include <iostream>

#include <greenlets/greenlets.hpp>

constexpr long N = 1000000;

// Keeps the compiler from replacing a loop by its closed-form result (so the serial
// loops really run N times, as Python's do).
inline void keep(long& x) { asm volatile("" : "+r"(x)); }

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

greenlets::greenlet g1;
greenlets::greenlet g2;

int main() {
  std::cout << "N = " << N << '\n';

  // Serial. Python: f1(); f2()
  {
    auto start = std::chrono::steady_clock::now();
    long res = 1;
    for (long i = 0; i < N; ++i) {
      res += i;
      keep(res);
    }
    long res2 = 1;
    for (long i = 0; i < N; ++i) {
      res2 *= i;
      keep(res2);
    }
    std::cout << "serial:   run time is " << since(start) << " s\n";
  }

  // Switched: f1 switches to f2 after every iteration, and f2 back to f1.
  {
    g1 = greenlets::greenlet([] {
      long res = 1;
      for (long i = 0; i < N; ++i) {
        res += i;
        keep(res);
        g2.switch_to();  // to f2, which does one iteration and switches back
      }
    });  // f1 ends first: control returns to its parent, main
    g2 = greenlets::greenlet([] {
      long res = 1;
      for (long i = 0; i < N; ++i) {
        res *= i;
        keep(res);
        g1.switch_to();  // back to f1
      }
    });
    auto start = std::chrono::steady_clock::now();
    g1.switch_to();  // runs both loops to f1's end: 2 * N switches
    double seconds = since(start);
    std::cout << "switched: run time is " << seconds << " s, " << seconds * 1e9 / (2.0 * N)
              << " ns per switch\n";
    g1 = greenlets::greenlet();
    g2 = greenlets::greenlet();  // f2 still waits in its last switch: unwound here
  }
  std::cout << "The full comparison: benchmarks/switch_overhead\n";
}

// Expected output:
// N = 1000000
// serial:   run time is {number} s
// switched: run time is {number} s, {number} ns per switch
// The full comparison: benchmarks/switch_overhead
