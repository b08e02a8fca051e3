// 14 — Greenlets on several threads: each thread has its own, and they do not cross.
//
// Every thread has its own main greenlet, created the first time it uses the library,
// and greenlets belong to the thread that created them. Threads run their greenlets at
// the same time without interfering; only switching between greenlets is cooperative,
// and only within one thread. Switching to (or throwing to, or re-parenting onto)
// another thread's greenlet is a `greenlets::error` whose message names both threads —
// never a crash — and says so when the owner has exited. A thread that ends unwinds the
// greenlets it still has suspended, and its main greenlet then reports `dead()`.
//
// Not in the tutorial (its thread chapters use OS threads without greenlets); this is
// Python greenlet's thread rule. The Python program (run with greenlet 2.0.2, it prints
// the same lines, with Python's wording of the errors and True):
//
//   import threading
//   from greenlet import greenlet, getcurrent, error
//
//   def ping_pong(name, results):
//       main = getcurrent()
//       def player(n):
//           while n < 3:
//               results.append('%s: ping %d' % (name, n))
//               n = main.switch(n + 1)
//           return 'done'
//       p = greenlet(player)
//       n = p.switch(0)
//       while not p.dead:
//           results.append('%s: pong %d' % (name, n))
//           n = p.switch(n)
//       results.append('%s: %s' % (name, n))
//
//   results = {'T1': [], 'T2': []}
//   threads = [threading.Thread(target=ping_pong, args=(name, results[name]))
//              for name in results]
//   for t in threads: t.start()
//   for t in threads: t.join()
//   for name in results:
//       for line in results[name]: print(line)
//
//   mains_greenlet = greenlet(lambda: print('never runs'))
//   def intruder():
//       try:
//           mains_greenlet.switch()
//       except error as e:
//           print('error:', e)     # cannot switch to a different thread
//   t = threading.Thread(target=intruder); t.start(); t.join()
//
//   box = []
//   def leave_one_behind():
//       g = greenlet(lambda: getcurrent().parent.switch())
//       g.switch()
//       box.append(g)
//       box.append(getcurrent())
//   t = threading.Thread(target=leave_one_behind); t.start(); t.join()
//   print('its main greenlet is dead:', box[1].dead)
//   try:
//       box[0].switch()
//   except error as e:
//       print('error:', e)         # ... (which happens to have exited)
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <greenlets/greenlets.hpp>

// A main greenlet and a player take turns, all inside the calling thread.
void ping_pong(const std::string& name, std::vector<std::string>& results) {
  greenlets::greenlet main_greenlet = greenlets::current();  // this thread's own
  greenlets::greenlet player([&](int n) {
    while (n < 3) {
      results.push_back(name + ": ping " + std::to_string(n));
      n = main_greenlet.switch_to(n + 1).get<int>();
    }
    return std::string("done");
  });
  greenlets::value v = player.switch_to(0);
  while (!player.dead()) {
    int n = v.get<int>();
    results.push_back(name + ": pong " + std::to_string(n));
    v = player.switch_to(n);
  }
  results.push_back(name + ": " + v.get<std::string>());
}

int main() {
  std::cout << std::boolalpha;
  // This thread's first use of the library: it becomes thread #1 in error messages.
  greenlets::greenlet mains_greenlet([] { std::cout << "never runs\n"; });

  // Two threads, each with its own greenlets, running at the same time. (Each writes
  // into its own vector; main prints them after both have finished.)
  std::vector<std::string> t1_results;
  std::vector<std::string> t2_results;
  std::thread t1(ping_pong, "T1", std::ref(t1_results));
  std::thread t2(ping_pong, "T2", std::ref(t2_results));
  t1.join();
  t2.join();
  for (const auto& line : t1_results) std::cout << line << '\n';
  for (const auto& line : t2_results) std::cout << line << '\n';

  // Crossing: another thread may hold a handle to our greenlet, but not switch to it.
  std::thread intruder([&] {
    try {
      mains_greenlet.switch_to();
    } catch (const greenlets::error& e) {
      std::cout << "error: " << e.what() << '\n';
    }
  });
  intruder.join();

  // A thread that exits with a greenlet still suspended: the greenlet is unwound as
  // the thread ends, the thread's main greenlet is dead, and a switch from here says
  // that the owner has exited.
  greenlets::greenlet left_behind;
  greenlets::greenlet its_main;
  std::thread leaver([&] {
    greenlets::greenlet g([] { greenlets::current().parent().switch_to(); });
    g.switch_to();  // g waits in its switch_to
    left_behind = g;
    its_main = greenlets::current();
  });
  leaver.join();
  std::cout << "its main greenlet is dead: " << its_main.dead() << '\n';
  try {
    left_behind.switch_to();
  } catch (const greenlets::error& e) {
    std::cout << "error: " << e.what() << '\n';
  }
}

// Two expected lines are longer than the column limit: clang-format must not wrap them.
// clang-format off
// Expected output:
// T1: ping 0
// T1: pong 1
// T1: ping 1
// T1: pong 2
// T1: ping 2
// T1: pong 3
// T1: done
// T2: ping 0
// T2: pong 1
// T2: ping 1
// T2: pong 2
// T2: ping 2
// T2: pong 3
// T2: done
// error: greenlets: switch_to: target (greenlet #1) belongs to another thread: thread #1 (id {number}); the current thread is thread #4 (id {number})
// its main greenlet is dead: true
// error: greenlets: switch_to: target (greenlet #1) belongs to another thread: thread #5 (id {number}), which has exited; the current thread is thread #1 (id {number})
