// 26 — two producers and two consumers share a queue.
//
// From the tutorial chapter on processes and threads (its Queue part): producers
// put ten items each, sleeping between puts; consumers get until they receive
// None. Here they are tasks, the sleep is 10 ms, three items each keep the output
// short, and an empty optional plays None (one per consumer, sent at the end).
//
//   from multiprocessing import Process, Queue
//   import time
//   def producer(name, food, q):
//       for i in range(10):
//           data = food, i
//           print(f'用户{name} 开始制作{data}')   # makes an item
//           q.put(data)
//           time.sleep(0.1)
//   def consumer(name, q):
//       while True:
//           data = q.get()
//           if not data:
//               break
//           print(f'用户{name} 开始吃{data}')     # eats it
//   if __name__ == '__main__':
//       q = Queue()
//       p1 = Process(target=producer, args=('neo', '煎饼', q))
//       p2 = Process(target=producer, args=('wick', '肉包', q))
//       c1 = Process(target=consumer, args=('cwz', q))
//       c2 = Process(target=consumer, args=('woods', q))
//       ...
#include <chrono>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <greenlets/hub.hpp>

using namespace std::chrono_literals;

using item = std::optional<std::string>;  // empty: no more items

void producer(const std::string& name, const std::string& food, greenlets::queue<item>& q) {
  for (int i = 0; i < 3; ++i) {
    std::string data = food + " " + std::to_string(i);
    std::cout << name << " makes " << data << '\n';
    q.put(data);
    greenlets::sleep(10ms);
  }
}

void consumer(const std::string& name, greenlets::queue<item>& q) {
  for (;;) {
    item data = q.get();  // waits while the queue is empty
    if (!data) break;
    std::cout << name << " eats " << *data << '\n';
  }
}

int main() {
  greenlets::queue<item> q;
  auto p1 = greenlets::spawn(producer, "neo", "pancake", std::ref(q));
  auto p2 = greenlets::spawn(producer, "wick", "bun", std::ref(q));
  auto c1 = greenlets::spawn(consumer, "cwz", std::ref(q));
  auto c2 = greenlets::spawn(consumer, "woods", std::ref(q));
  // The producers start first and put one item each before the consumers run: cwz
  // finds both. From then on both consumers wait, and each item goes straight to the
  // consumer that has waited longest.
  p1.join();
  p2.join();
  q.put(std::nullopt);  // one end marker per consumer
  q.put(std::nullopt);
  c1.join();
  c2.join();
  std::cout << "done\n";
}

// Expected output:
// neo makes pancake 0
// wick makes bun 0
// cwz eats pancake 0
// cwz eats bun 0
// neo makes pancake 1
// wick makes bun 1
// cwz eats pancake 1
// woods eats bun 1
// neo makes pancake 2
// wick makes bun 2
// cwz eats pancake 2
// woods eats bun 2
// done
