// 07 — Generators inside generators: Python's `yield from`.
//
// func1 yields 1, then everything func2 yields (3 and 4), then 2. In C++ the outer body
// simply loops over the inner generator and yields each item; each body has its own
// stack, so nesting needs nothing special, and `yield` may be called from any depth of
// nested calls.
//
// Retells the yield section of the asyncio tutorial's coroutine chapter. The Python
// program:
//
//   def func1():
//       yield 1
//       yield from func2()
//       yield 2
//
//   def func2():
//       yield 3
//       yield 4
//
//   f1 = func1()
//   for item in f1:
//       print(item)
#include <iostream>

#include <greenlets/generator.hpp>

using ints = greenlets::generator<int>;

ints func2() {
  return ints([](greenlets::yield<int>& yield) {
    yield(3);
    yield(4);
  });
}

ints func1() {
  return ints([](greenlets::yield<int>& yield) {
    yield(1);
    for (int item : func2()) yield(item);  // Python: yield from func2()
    yield(2);
  });
}

int main() {
  for (int item : func1()) std::cout << item << '\n';  // Python: for item in f1: print(item)
}

// Expected output:
// 1
// 3
// 4
// 2
