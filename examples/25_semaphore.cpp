// 25 — twenty tasks, at most five at a time, through a semaphore.
//
// From the tutorial chapter on processes and threads (its Semaphore part): twenty
// threads share a Semaphore(5), so they run in waves of five. Here they are tasks;
// each holds its permit for 20 ms, and the program reports the most that ever ran at
// once and the waves they ran in (permits go to waiters first come, first served).
//
//   from threading import Semaphore, Thread, current_thread
//   import time
//   sm = Semaphore(5)
//   def task():
//       sm.acquire()
//       print(f'{current_thread().name} 执行任务')   # runs its job
//       time.sleep(1)
//       sm.release()
//   for i in range(20):
//       t = Thread(target=task)
//       t.start()
#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

greenlets::semaphore sm(5);
int running = 0;
int most = 0;
int wave = 0;

void task(int number) {
  sm.acquire();
  if (running == 0) std::cout << "wave " << ++wave << ":";
  ++running;
  most = std::max(most, running);
  std::cout << ' ' << number << (running == 5 ? "\n" : "");
  greenlets::sleep(20ms);  // holds its permit meanwhile
  --running;
  sm.release();
}

int main() {
  std::vector<greenlets::task<void>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(greenlets::spawn(task, i));
  greenlets::joinall(tasks);
  std::cout << "at most " << most << " at a time\n";
}

// Expected output:
// wave 1: 0 1 2 3 4
// wave 2: 5 6 7 8 9
// wave 3: 10 11 12 13 14
// wave 4: 15 16 17 18 19
// at most 5 at a time
