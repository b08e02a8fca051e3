// 01 — Switching back and forth: two greenlets hand control to each other.
//
// A greenlet runs only when something switches to it, and runs until it switches
// somewhere else. The first switch to a greenlet starts its `run` with the switch's
// arguments ("egon"); every later switch resumes it just after the switch_to where it
// stopped. When `run` returns, control goes to the greenlet's parent (here main), not to
// whoever switched to it last.
//
// Retells the tutorial's greenlet chapter: eat and play. The Python program:
//
//   from greenlet import greenlet
//
//   def eat(name):
//       print('%s eat 1' % name)
//       g2.switch('egon')
//       print('%s eat 2' % name)
//       g2.switch()
//
//   def play(name):
//       print('%s play 1' % name)
//       g1.switch()
//       print('%s play 2' % name)
//
//   g1 = greenlet(eat)
//   g2 = greenlet(play)
//   g1.switch('egon')   # arguments go with the first switch; later ones need none
#include <iostream>
#include <string>

#include <greenlets/greenlets.hpp>

// A greenlet is a handle: g1 and g2 are declared first so that eat and play can name
// each other, as the Python module-level globals do.
greenlets::greenlet g1;
greenlets::greenlet g2;

void eat(const std::string& name) {
  std::cout << name << " eat 1\n";
  g2.switch_to("egon");  // starts play("egon"); we continue here when someone switches back
  std::cout << name << " eat 2\n";
  g2.switch_to();  // resumes play where it stopped (no arguments needed now)
}

void play(const std::string& name) {
  std::cout << name << " play 1\n";
  g1.switch_to();  // back to eat, just after its g2.switch_to("egon")
  std::cout << name << " play 2\n";
}  // play returns: control goes to g2's *parent*, main, not to eat

int main() {
  // run may take concrete parameters: they are converted from the first switch's
  // arguments ("egon" travels as const char* and is read as std::string).
  g1 = greenlets::greenlet([](std::string name) { eat(name); });
  g2 = greenlets::greenlet([](std::string name) { play(name); });

  // Only main runs until this switch; it comes back when play finishes.
  g1.switch_to("egon");

  // eat never finished: it still waits in its last switch_to. play is dead.
  std::cout << std::boolalpha << "g1 dead: " << g1.dead() << ", g2 dead: " << g2.dead() << '\n';

  // Dropping the last handle of a suspended greenlet unwinds it (greenlet_exit is thrown
  // at its pending switch_to), so eat's stack is cleaned up here.
  g1 = greenlets::greenlet();
  g2 = greenlets::greenlet();
}

// Expected output:
// egon eat 1
// egon play 1
// egon eat 2
// egon play 2
// g1 dead: false, g2 dead: true
