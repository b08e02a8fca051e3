// 23 — work1 and work2 sleep for random times; whoever wakes first prints next.
//
// From the tutorial chapter on generators, greenlet and gevent (its gevent part):
// two tasks print a counter and sleep a random time, so their lines interleave in
// an order only the sleeps decide. The Python sleeps up to 1 s from an unseeded
// random(); here the sleeps are whole multiples of 40 ms drawn from a seeded
// generator, so the order is the same on every run (no two wake-ups come closer
// than 40 ms).
//
//   from gevent import monkey
//   import gevent, random, time
//   monkey.patch_all()
//   def coroutine_work(coroutine_name):
//       for i in range(10):
//           print(coroutine_name, i)
//           time.sleep(random.random())
//   gevent.joinall([
//       gevent.spawn(coroutine_work, "work1"),
//       gevent.spawn(coroutine_work, "work2")
//   ])
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

void coroutine_work(const std::string& name, const std::vector<int>& naps) {
  for (int i = 0; i < 10; ++i) {
    std::cout << name << ' ' << i << '\n';
    greenlets::sleep(naps[static_cast<std::size_t>(i)] * 40ms);
  }
}

int main() {
  std::minstd_rand random(25);  // the raw engine is the same everywhere
  std::vector<int> naps1;
  std::vector<int> naps2;
  for (int i = 0; i < 10; ++i) naps1.push_back(static_cast<int>(random() % 10));
  for (int i = 0; i < 10; ++i) naps2.push_back(static_cast<int>(random() % 10));
  greenlets::joinall(std::vector<greenlets::task<void>>{
      greenlets::spawn(coroutine_work, "work1", naps1),
      greenlets::spawn(coroutine_work, "work2", naps2),
  });
}

// Expected output:
// work1 0
// work2 0
// work2 1
// work1 1
// work2 2
// work1 2
// work2 3
// work1 3
// work1 4
// work2 4
// work1 5
// work2 5
// work2 6
// work1 6
// work1 7
// work1 8
// work2 7
// work1 9
// work2 8
// work2 9
