// 24 — cars wait at a red light until an event turns it green.
//
// From the tutorial chapter on processes and threads (its Event part): a light
// thread sleeps, then sets an Event; ten car threads wait on it and all drive off
// once it is set. Here the light and the cars are tasks on one thread, the red phase
// lasts 50 ms, and each car says its number.
//
//   from threading import Event, Thread
//   import time
//   e = Event()
//   def light():
//       print('红灯亮...')            # red light on
//       time.sleep(5)
//       e.set()
//       print('绿灯亮...')            # green light on
//   def car(name):
//       print('正在等红灯...')        # waiting at the red light
//       e.wait()
//       print(f'{name} 正在加速飘逸...')  # speeds away
//   t = Thread(target=light)
//   t.start()
//   for i in range(10):
//       t = Thread(target=car, args=(f'汽车{i} 号',))
//       t.start()
#include <chrono>
#include <iostream>
#include <vector>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

greenlets::event green;

void light() {
  std::cout << "red light\n";
  greenlets::sleep(50ms);
  green.set();  // wakes every waiting car, in the order they arrived
  std::cout << "green light\n";
}

void car(int number) {
  std::cout << "car " << number << " waits at the red light\n";
  green.wait();
  std::cout << "car " << number << " speeds away\n";
}

int main() {
  std::vector<greenlets::task<void>> tasks{greenlets::spawn(light)};
  for (int i = 0; i < 5; ++i) tasks.push_back(greenlets::spawn(car, i));
  greenlets::joinall(tasks);
}

// Expected output:
// red light
// car 0 waits at the red light
// car 1 waits at the red light
// car 2 waits at the red light
// car 3 waits at the red light
// car 4 waits at the red light
// green light
// car 0 speeds away
// car 1 speeds away
// car 2 speeds away
// car 3 speeds away
// car 4 speeds away
