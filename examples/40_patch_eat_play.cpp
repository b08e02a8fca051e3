// 40 — eat and play with the plain, blocking sleep: the patch makes it cooperative.
//
// From the gevent part of the tutorial chapter on coroutines: gevent does not know
// time.sleep() until `monkey.patch_all()` replaces the blocking calls of the standard
// library with cooperative ones; then eat() and play() overlap again, as with
// gevent.sleep. Here the program links greenlets::patch (that is the whole opt-in), and
// the sleep is the standard library's own std::this_thread::sleep_for, which ends in the
// C library's nanosleep: inside a task it parks the task, not the thread. 100 ms sleeps.
//
//   from gevent import monkey; monkey.patch_all()
//   import time
//   import gevent
//   def eat():
//       print('eating1')
//       time.sleep(1)
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
#include <greenlets/patch.hpp>

using namespace std::chrono_literals;

void eat() {
  std::cout << "eating1\n";
  std::this_thread::sleep_for(100ms);  // a blocking call, made cooperative by the patch
  std::cout << "eating2\n";
}

void play() {
  std::cout << "playing1\n";
  std::this_thread::sleep_for(100ms);
  std::cout << "playing2\n";
}

int main() {
  std::cout << "patched: " << (greenlets::patched() ? "yes" : "no") << '\n';
  const auto t0 = std::chrono::steady_clock::now();
  auto g1 = greenlets::spawn(eat);
  auto g2 = greenlets::spawn(play);
  g1.join();
  g2.join();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
  // Without the patch each sleep would hold the thread: 200 ms in all.
  std::cout << "the two sleeps overlapped: " << (took < 190ms ? "yes" : "no") << '\n';
}

// Expected output:
// patched: yes
// eating1
// playing1
// eating2
// playing2
// the two sleeps overlapped: yes
