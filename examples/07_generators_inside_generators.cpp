// 07 — generators inside generators: Python's `yield from`.
//
// From document 003, "6.1.2 yield": func1 yields 1, then everything func2 yields
// (3 and 4), then 2. In C++ the outer body simply loops over the inner generator and
// yields each item; each body has its own stack, so nesting needs nothing special.
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
