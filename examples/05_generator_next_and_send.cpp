// 05 — a generator freezes a function's state: next() and send().
//
// From document 000, "冻结函数状态-->生成器" (freezing a function's state: generators).
// Part 1: func() prints 1, 2, 3 between yields of 'aaa', 'bbb', 'ccc'; one next(g)
// runs it only up to the first yield, so only 1 is printed.
// Part 2: `x = yield 1`: next(g) returns 1; g.send('aaa') resumes the body with
// x = 'aaa', which it prints, and returns the next yielded value, 2.
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
