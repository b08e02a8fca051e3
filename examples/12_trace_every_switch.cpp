// 12 — Watching every switch: a trace function.
//
// `settrace(fn)` installs a function that this thread calls after every transfer of
// control, in the greenlet that receives it, with the event (`switch_to` or
// `throw_to`), where control came from and where it went. A greenlet's end is a
// switch to its parent; a kill is a throw into the greenlet, then its end. Here the
// trace follows the tutorial's A/B program, then kills A, which B's end left
// suspended. `settrace` returns the previous function; `settrace(nullptr)` stops.
//
// Retells the tutorial's greenlet chapter (A and B switching twice), with Python
// greenlet's `settrace` added. The Python program (run with greenlet 2.0.2, it prints
// the same lines, with Python's True and False):
//
//   import greenlet
//   from greenlet import getcurrent
//
//   def A():
//       print('a.....')
//       g2.switch()
//       print('a....2')
//       g2.switch()
//
//   def B():
//       print('b.....')
//       g1.switch()
//       print('b....2')
//
//   def name(g):
//       return {id(main): 'main', id(g1): 'A', id(g2): 'B'}.get(id(g), '?')
//
//   def callback(event, args):
//       origin, target = args
//       print('  [%s %s -> %s]' % (event, name(origin), name(target)))
//
//   main = getcurrent()
//   g1 = greenlet.greenlet(A)
//   g2 = greenlet.greenlet(B)
//   greenlet.settrace(callback)
//   g1.switch()
//   print('B ended; A is suspended:', bool(g1))
//   g1.throw()
//   print('killed A')
//   greenlet.settrace(None)
//   print('tracing on:', greenlet.gettrace() is not None)
#include <iostream>
#include <string>

#include <greenlets/greenlets.hpp>

greenlets::greenlet main_greenlet;
greenlets::greenlet g1;
greenlets::greenlet g2;

void A() {
  std::cout << "a.....\n";
  g2.switch_to();
  std::cout << "a....2\n";
  g2.switch_to();
}

void B() {
  std::cout << "b.....\n";
  g1.switch_to();
  std::cout << "b....2\n";
}

std::string name(const greenlets::greenlet& g) {
  if (g == main_greenlet) return "main";
  if (g == g1) return "A";
  if (g == g2) return "B";
  return "?";
}

// Runs in the target greenlet, just after the switch (for a greenlet that is starting,
// before its run).
void callback(greenlets::trace_event event, const greenlets::greenlet& origin,
              const greenlets::greenlet& target) {
  const char* what = event == greenlets::trace_event::switch_to ? "switch" : "throw";
  std::cout << "  [" << what << ' ' << name(origin) << " -> " << name(target) << "]\n";
}

int main() {
  main_greenlet = greenlets::current();
  g1 = greenlets::greenlet(A);
  g2 = greenlets::greenlet(B);
  greenlets::trace_function previous = greenlets::settrace(callback);  // none before
  g1.switch_to();
  std::cout << std::boolalpha << "B ended; A is suspended: " << g1.active() << '\n';
  g1.throw_to();  // dropping g1's last handle would trace the same two events
  std::cout << "killed A\n";
  greenlets::settrace(previous);  // no tracing again
  std::cout << "tracing on: " << static_cast<bool>(greenlets::gettrace()) << '\n';
}

// Expected output:
//   [switch main -> A]
// a.....
//   [switch A -> B]
// b.....
//   [switch B -> A]
// a....2
//   [switch A -> B]
// b....2
//   [switch B -> main]
// B ended; A is suspended: true
//   [throw main -> A]
//   [switch A -> main]
// killed A
// tracing on: false
