// 28 — a blocking call on a worker thread while other tasks keep running.
//
// From the tutorial chapter on coroutines (greenlet and gevent): gevent switches
// tasks only at calls it knows; an ordinary blocking call (there, time.sleep without
// monkey patching) stops every task. gevent's answer for calls it cannot make
// cooperative is its thread pool. Here a task runs a really blocking
// std::this_thread::sleep_for through run_in_thread, while a ticker task keeps going.
//
//   import time, gevent
//   def eat():
//       print('eating1')
//       time.sleep(1)            # blocks everything: play() cannot run meanwhile
//       print('eating2')
//   def play():
//       print('playing1')
//       time.sleep(1)
//       print('playing2')
//   g1 = gevent.spawn(eat)
//   g2 = gevent.spawn(play)
//   g1.join()
//   g2.join()
#include <chrono>
#include <iostream>
#include <thread>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

int main() {
  bool done = false;
  int ticks = 0;
  auto ticker = greenlets::spawn([&] {
    while (!done) {
      greenlets::sleep(5ms);
      ++ticks;
    }
  });
  auto eater = greenlets::spawn([&] {
    std::cout << "eating1\n";
    // Blocks a worker thread, not this one: the ticker keeps ticking.
    const int bites = greenlets::run_in_thread([] {
      std::this_thread::sleep_for(100ms);
      return 3;
    });
    std::cout << "eating2 after " << bites << " bites\n";
    done = true;
  });
  eater.join();
  ticker.join();
  std::cout << "the ticker ran while the thread blocked: " << (ticks > 0 ? "yes" : "no") << '\n';
}

// Expected output:
// eating1
// eating2 after 3 bites
// the ticker ran while the thread blocked: yes
