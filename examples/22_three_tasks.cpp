// 22 — three tasks counting to 4, first without blocking, then sleeping in between.
//
// From the tutorial chapter on generators, greenlet and gevent (its gevent part):
// f(n) prints the current greenlet and a counter. Without a blocking call each task
// runs to its end before the next starts; with gevent.sleep(1) between prints the
// three interleave. The sleeps here are 10 ms, and each task prints its number where
// Python prints the greenlet's address.
//
//   import gevent
//   def f(n):
//       for i in range(n):
//           print(gevent.getcurrent(), i)
//           gevent.sleep(1)      # only in the second program
//   g1 = gevent.spawn(f, 5)
//   g2 = gevent.spawn(f, 5)
//   g3 = gevent.spawn(f, 5)
//   g1.join()
//   g2.join()
//   g3.join()
#include <chrono>
#include <iostream>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

void f(int task_number, int n, bool sleep_between) {
  for (int i = 0; i < n; ++i) {
    std::cout << "task " << task_number << ": " << i << '\n';
    if (sleep_between) greenlets::sleep(10ms);  // lets the other tasks run
  }
}

int main() {
  for (bool sleep_between : {false, true}) {
    std::cout << (sleep_between ? "with sleep:\n" : "without sleep:\n");
    auto g1 = greenlets::spawn(f, 1, 5, sleep_between);
    auto g2 = greenlets::spawn(f, 2, 5, sleep_between);
    auto g3 = greenlets::spawn(f, 3, 5, sleep_between);
    g1.join();
    g2.join();
    g3.join();
  }
}

// Expected output:
// without sleep:
// task 1: 0
// task 1: 1
// task 1: 2
// task 1: 3
// task 1: 4
// task 2: 0
// task 2: 1
// task 2: 2
// task 2: 3
// task 2: 4
// task 3: 0
// task 3: 1
// task 3: 2
// task 3: 3
// task 3: 4
// with sleep:
// task 1: 0
// task 2: 0
// task 3: 0
// task 1: 1
// task 2: 1
// task 3: 1
// task 1: 2
// task 2: 2
// task 3: 2
// task 1: 3
// task 2: 3
// task 3: 3
// task 1: 4
// task 2: 4
// task 3: 4
