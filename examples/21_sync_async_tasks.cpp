// 21 — the same ten tasks run one after another, then all at once.
//
// From the gevent part of the tutorial chapter on coroutines (greenlet and gevent):
// synchronous() calls task() ten times, each sleeping; asynchronous() spawns ten
// tasks and joins them all, so their sleeps overlap and the whole takes one sleep.
// The Python sleeps 0.5 s through monkey patching; here each sleeps 20 ms through
// greenlets::sleep, and the program prints how many sleeps each part took.
//
//   from gevent import spawn, joinall, monkey; monkey.patch_all()
//   import time
//   def task(pid):
//       time.sleep(0.5)
//       print('Task %s done' % pid)
//   def synchronous():
//       for i in range(10):
//           task(i)
//   def asynchronous():
//       g_l = [spawn(task, i) for i in range(10)]
//       joinall(g_l)
//       print('DONE')
//   if __name__ == '__main__':
//       print('Synchronous:')
//       synchronous()
//       print('Asynchronous:')
//       asynchronous()
#include <chrono>
#include <iostream>
#include <vector>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

constexpr auto nap = 20ms;

void task(int pid) {
  greenlets::sleep(nap);
  std::cout << "Task " << pid << " done\n";
}

void synchronous() {
  for (int i = 0; i < 10; ++i) task(i);  // each waits for the one before
}

void asynchronous() {
  std::vector<greenlets::task<void>> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(greenlets::spawn(task, i));
  greenlets::joinall(tasks);  // the ten sleeps run side by side
  std::cout << "DONE\n";
}

// How many naps `f` took, rounded down.
template <class F>
long naps(F f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return static_cast<long>((std::chrono::steady_clock::now() - start) / nap);
}

int main() {
  std::cout << "Synchronous:\n";
  const long sync_naps = naps(synchronous);
  std::cout << "Asynchronous:\n";
  const long async_naps = naps(asynchronous);
  // Ten naps one after another; the overlapped ones take about one.
  std::cout << "synchronous took at least 10 naps: " << (sync_naps >= 10 ? "yes" : "no") << '\n';
  std::cout << "asynchronous took fewer: " << (async_naps < sync_naps ? "yes" : "no") << '\n';
}

// Expected output:
// Synchronous:
// Task 0 done
// Task 1 done
// Task 2 done
// Task 3 done
// Task 4 done
// Task 5 done
// Task 6 done
// Task 7 done
// Task 8 done
// Task 9 done
// Asynchronous:
// Task 0 done
// Task 1 done
// Task 2 done
// Task 3 done
// Task 4 done
// Task 5 done
// Task 6 done
// Task 7 done
// Task 8 done
// Task 9 done
// DONE
// synchronous took at least 10 naps: yes
// asynchronous took fewer: yes
