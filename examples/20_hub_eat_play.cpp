// 20 — eat and play take turns while each one sleeps: the hub at work.
//
// From the gevent part of the tutorial chapter on coroutines (greenlet and gevent):
// a blocking call in one task lets the other tasks run. gevent.sleep(1) in eat() hands
// control to play(), whose own sleep hands it back. The sleeps here are 100 ms.
//
//   import gevent
//   def eat():
//       print('eating1')
//       gevent.sleep(1)
//       print('eating2')
//   def play():
//       print('playing1')
//       gevent.sleep(1)
//       print('playing2')
//   g1 = gevent.spawn(eat)
//   g2 = gevent.spawn(play)
//   g1.join()
//   g2.join()
#include <chrono>
#include <iostream>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

void eat() {
  std::cout << "eating1\n";
  greenlets::sleep(100ms);  // blocks this task only: play() runs meanwhile
  std::cout << "eating2\n";
}

void play() {
  std::cout << "playing1\n";
  greenlets::sleep(100ms);
  std::cout << "playing2\n";
}

int main() {
  auto g1 = greenlets::spawn(eat);  // nothing runs yet: spawn only schedules
  auto g2 = greenlets::spawn(play);
  g1.join();  // main blocks: the hub starts g1, then g2, in spawn order
  g2.join();
}

// Expected output:
// eating1
// playing1
// eating2
// playing2
