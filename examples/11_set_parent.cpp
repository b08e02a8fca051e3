// 11 — Choosing who receives a greenlet's result: parents and set_parent.
//
// When `run` returns, its result goes to the greenlet's parent — by default the
// greenlet that created it — not to whoever switched to it last. `set_parent` (or the
// parent given to the constructor) redirects it. Here two workers hand their results to
// a collector instead of main. The collector has not started when the first worker
// ends, so that result starts it: it becomes the collector's `run` argument. A parent
// chain may not loop, and a main greenlet has no parent: both are `greenlets::error`.
//
// Not in the tutorial; this is Python greenlet's `g.parent`. The Python program (run
// with greenlet 2.0.2, it prints the same lines, with Python's wording of the errors):
//
//   from greenlet import greenlet, getcurrent
//   main = getcurrent()
//
//   def collect(result):
//       total = 0
//       while True:
//           total += result
//           print('collector: got', result, 'total', total)
//           result = main.switch(total)
//
//   collector = greenlet(collect)
//
//   def square(n):
//       print('worker: squaring', n)
//       return n * n
//
//   w1 = greenlet(square)
//   w1.parent = collector
//   print('main: back with', w1.switch(3))
//
//   w2 = greenlet(square, collector)
//   print('main: back with', w2.switch(4))
//
//   w3 = greenlet(square, collector)
//   try:
//       collector.parent = w3
//   except ValueError as e:
//       print('error:', e)                     # cyclic parent chain
//   try:
//       main.parent = collector
//   except AttributeError as e:
//       print('error:', e)                     # cannot set the parent of a main greenlet
#include <iostream>

#include <greenlets/greenlets.hpp>

int main() {
  greenlets::greenlet main_greenlet = greenlets::current();

  // Started by the first result that reaches it; then it sends each running total to
  // main and waits there for the next result.
  greenlets::greenlet collector([&](int result) {
    int total = 0;
    for (;;) {
      total += result;
      std::cout << "collector: got " << result << " total " << total << '\n';
      result = main_greenlet.switch_to(total).get<int>();
    }
  });

  auto square = [](int n) {
    std::cout << "worker: squaring " << n << '\n';
    return n * n;  // goes to the parent
  };

  greenlets::greenlet w1(square);  // parent: main, the greenlet creating it
  w1.set_parent(collector);        // Python: w1.parent = collector
  // main -> w1; w1 returns 9 to the collector (starting it); the collector sends 9 here.
  int total = w1.switch_to(3).get<int>();
  std::cout << "main: back with " << total << '\n';

  greenlets::greenlet w2(square, collector);  // the parent given at creation
  // w2 returns 16 to the collector's pending switch_to, which sends 25 here.
  total = w2.switch_to(4).get<int>();
  std::cout << "main: back with " << total << '\n';

  greenlets::greenlet w3(square, collector);
  try {
    collector.set_parent(w3);  // collector -> w3 -> collector
  } catch (const greenlets::error& e) {
    std::cout << "error: " << e.what() << '\n';
  }
  try {
    main_greenlet.set_parent(collector);
  } catch (const greenlets::error& e) {
    std::cout << "error: " << e.what() << '\n';
  }
  // The collector, still waiting in its switch_to, is unwound when its last handle
  // goes (after w3's, which holds it as a parent).
}

// Expected output:
// worker: squaring 3
// collector: got 9 total 9
// main: back with 9
// worker: squaring 4
// collector: got 16 total 25
// main: back with 25
// error: greenlets: set_parent: would create a cycle
// error: greenlets: set_parent: a main greenlet has no parent and cannot be given one
