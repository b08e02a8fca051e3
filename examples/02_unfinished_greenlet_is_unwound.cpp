// 02 — A greenlet never switched back to never finishes; dropping it unwinds it.
//
// test1 prints 12 and switches to test2, which prints 56 and switches back; test1
// prints 34 and ends, and control goes to main. Nothing ever switches to test2 again,
// so 78 is never printed: test2 stays suspended. Python warns that such a greenlet may
// leak; in C++, dropping the last handle of a suspended greenlet throws
// `greenlets::greenlet_exit` at its pending switch_to, so its stack unwinds and its
// destructors run.
//
// Retells the tutorial's greenlet chapter, where it asks how switching actually works:
// test1 and test2. The Python program:
//
//   from greenlet import greenlet
//
//   def test1():
//       print(12)
//       gr2.switch()
//       print(34)
//
//   def test2():
//       print(56)
//       gr1.switch()
//       print(78)
//
//   gr1 = greenlet(test1)
//   gr2 = greenlet(test2)
//   gr1.switch()
#include <iostream>

#include <greenlets/greenlets.hpp>

greenlets::greenlet gr1;
greenlets::greenlet gr2;

// Something with a destructor, living on test2's stack.
struct announce_on_destroy {
  ~announce_on_destroy() { std::cout << "test2 unwound: its destructor ran, 78 never printed\n"; }
};

void test1() {
  std::cout << 12 << '\n';
  gr2.switch_to();  // run test2 until it switches back
  std::cout << 34 << '\n';
}  // test1 ends: back to its parent, main

void test2() {
  announce_on_destroy guard;
  std::cout << 56 << '\n';
  gr1.switch_to();  // back to test1 — and no one ever switches here again
  std::cout << 78 << '\n';
}

int main() {
  gr1 = greenlets::greenlet(test1);
  gr2 = greenlets::greenlet(test2);
  gr1.switch_to();  // prints 12, 56, 34, then returns here

  std::cout << std::boolalpha << "gr1 dead: " << gr1.dead() << ", gr2 active: " << gr2.active()
            << '\n';

  // test2 is suspended inside gr1.switch_to(). Dropping its last handle throws
  // greenlets::greenlet_exit there: its stack unwinds (guard's destructor runs) and
  // control comes back here. Python: the greenlet is collected and GreenletExit raised.
  gr2 = greenlets::greenlet();
  std::cout << "done\n";
}

// Expected output:
// 12
// 56
// 34
// gr1 dead: true, gr2 active: true
// test2 unwound: its destructor ran, 78 never printed
// done
