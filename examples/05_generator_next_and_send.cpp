// 05 — A generator freezes a function's state: next() and send().
//
// A generator's body runs only when asked: next() runs it up to its next yield and
// returns the yielded item, leaving the rest undone until the next request. send(x)
// does the same, and the pending yield inside the body returns x. Part 1: one next()
// runs the body only up to its first yield, so only 1 is printed. Part 2: next()
// returns 1; send("aaa") resumes the body with x = "aaa", which it prints, and returns
// the next yielded item, 2.
//
// Retells the tutorial's section on freezing a function's state with generators. The
// Python programs:
//
//   def func():
//       print(1)
//       yield 'aaa'
//       print(2)
//       yield 'bbb'
//       print(3)
//       yield 'ccc'
//
//   g = func()
//   next(g)
//
//   def func():
//       x = yield 1
//       print(x)
//       yield 2
//
//   g = func()
//   print(next(g))
//   print(g.send('aaa'))
#include <iostream>
#include <optional>
#include <string>

#include <greenlets/generator.hpp>

int main() {
  {
    // Part 1. Python: def func(): print(1); yield 'aaa'; print(2); yield 'bbb'; ...
    greenlets::generator<std::string> g([](greenlets::yield<std::string>& yield) {
      std::cout << 1 << '\n';
      yield("aaa");  // suspends here; next(g) returns "aaa"
      std::cout << 2 << '\n';
      yield("bbb");
      std::cout << 3 << '\n';
      yield("ccc");
    });
    g.next();  // Python: next(g) — runs up to the first yield: prints 1
  }            // g is destroyed while suspended: its body is unwound, 2 and 3 never print

  std::cout << "--\n";

  {
    // Part 2. Python: def func(): x = yield 1; print(x); yield 2
    // generator<int, std::string>: yields ints, accepts strings by send().
    greenlets::generator<int, std::string> g([](greenlets::yield<int, std::string>& yield) {
      std::optional<std::string> x = yield(1);  // the value sent, or nullopt after next()
      std::cout << *x << '\n';
      yield(2);
    });
    std::cout << *g.next() << '\n';       // Python: print(next(g))       -> 1
    std::cout << *g.send("aaa") << '\n';  // Python: print(g.send('aaa')) -> aaa, then 2
  }
}

// Expected output:
// 1
// --
// 1
// aaa
// 2
