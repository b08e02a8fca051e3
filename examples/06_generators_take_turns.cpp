// 06 — Two generators take turns, driven by next().
//
// Each generator prints a line and yields; main resumes one, then the other, so their
// lines alternate: cooperative multitasking with no threads. The Python original loops
// forever with time.sleep(0.5); here main runs three rounds without sleeping, and the
// generators, still suspended in their endless loops, are unwound when destroyed.
//
// Retells the tutorial's simple coroutine section: work1 and work2. The Python program:
//
//   import time
//
//   def work1():
//       while True:
//           print("------work1----")
//           yield
//           time.sleep(0.5)
//
//   def work2():
//       while True:
//           print("------work2-----")
//           yield
//           time.sleep(0.5)
//
//   def main():
//       w1 = work1()
//       w2 = work2()
//       while True:
//           next(w1)
//           next(w2)
//
//   if __name__ == "__main__":
//       main()
#include <cstddef>
#include <iostream>

#include <greenlets/generator.hpp>

// A generator that yields no item: generator<void>, whose body calls a bare yield(),
// as Python's bare `yield`.
using task = greenlets::generator<void>;

task work1() {
  return task([](greenlets::yield<void>& yield) {
    for (;;) {
      std::cout << "------work1----\n";
      yield();  // hand control back to whoever called next()
    }
  });
}

task work2() {
  return task([](greenlets::yield<void>& yield) {
    for (;;) {
      std::cout << "------work2-----\n";
      yield();
    }
  });
}

int main() {
  task w1 = work1();  // nothing printed yet: generators are lazy
  task w2 = work2();
  for (int round = 0; round < 3; ++round) {  // Python: while True:
    w1.next();                               // runs work1 until its yield
    w2.next();                               // runs work2 until its yield
  }  // (next() returns true while the body yields, false once it has finished)
}  // w2, then w1, destroyed: each endless loop is unwound at its yield

// Expected output:
// ------work1----
// ------work2-----
// ------work1----
// ------work2-----
// ------work1----
// ------work2-----
