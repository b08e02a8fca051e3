// 01 — eat and play: two greenlets switching back and forth.
//
// From document 000, "三、Greenlet模块" (the greenlet module): eat(name) and play(name)
// hand control to each other with switch(). The first switch starts a greenlet and
// passes its arguments ("egon"); later switches resume it where it stopped.
// Python: g1 = greenlet(eat); g2 = greenlet(play); g1.switch('egon')
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
