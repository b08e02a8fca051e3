// 04 — producer and consumer with yield/send: "the consumer needs a bun".
//
// From the "python3之协程" tutorial, "(1)yield实现协程效果" (coroutines with yield): the
// consumer is a generator that waits at `bun = yield` for the producer to send() it a
// bun. Here the generator's body runs on its own greenlet; send(i) resumes it, and the
// pending yield returns i. The bare `yield` hands out nothing: generator<void, int>.
#include <iostream>
#include <optional>
#include <string>

#include <greenlets/generator.hpp>

// generator<T, S>: yields T to the consumer of the generator, accepts S by send().
// T = void: the body's bare yield() hands out no item, as Python's bare `yield`.
using bun_eater = greenlets::generator<void, int>;

bun_eater consumer(std::string name) {
  // Nothing runs yet: the body starts at the first next(), as a Python generator.
  return bun_eater([name](greenlets::yield<void, int>& yield) {
    std::cout << "Start eating buns...\n";
    for (;;) {
      std::cout << "[consumer] " << name << " needs a bun\n";
      // Python: bone = yield — suspends here; send(i) makes this return i
      // (next() would make it return std::nullopt).
      std::optional<int> bun = yield();
      std::cout << "[" << name << "] ate bun " << *bun << '\n';
    }
  });
}

void producer(bun_eater& eater) {
  eater.next();  // Python: obj1.send(None) — run the body up to its first yield
  for (int i = 0; i < 3; ++i) {
    std::cout << "[producer] making bun " << i << '\n';
    eater.send(i);  // resume the consumer with the bun; returns at its next yield
  }
}

int main() {
  bun_eater con1 = consumer("consumer A");
  producer(con1);
  // con1 still waits for a fourth bun; destroying it unwinds its body.
}

// Expected output:
// Start eating buns...
// [consumer] consumer A needs a bun
// [producer] making bun 0
// [consumer A] ate bun 0
// [consumer] consumer A needs a bun
// [producer] making bun 1
// [consumer A] ate bun 1
// [consumer] consumer A needs a bun
// [producer] making bun 2
// [consumer A] ate bun 2
// [consumer] consumer A needs a bun
