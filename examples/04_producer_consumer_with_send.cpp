// 04 — A producer and a consumer taking turns through yield and send.
//
// The consumer is a generator: it waits at `yield` for the producer to send() it a
// bun, eats it, and waits again. Here the generator's body runs on a greenlet of its
// own: send(i) resumes it, and its pending yield returns i. The body starts only at the
// first next(), as Python's must be started with send(None). The bare `yield` hands
// out nothing: the generator is a generator<void, int>.
//
// Retells the yield section of the tutorial's coroutine chapter: the consumer who needs
// buns. The Python program (its messages translated, its colours left out):
//
//   def consumer(name):
//       print('Start eating buns...')
//       while True:
//           print('[consumer] %s needs a bun' % name)
//           bone = yield   # receives what send() sends
//           print('[%s] ate bun %s' % (name, bone))
//
//   def producer(obj1):
//       obj1.send(None)   # must send None first
//       for i in range(3):
//           print('[producer] making bun %s' % i)
//           obj1.send(i)
//
//   if __name__ == '__main__':
//       con1 = consumer('consumer A')
//       producer(con1)
#include <cstddef>
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
