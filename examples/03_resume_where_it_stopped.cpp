// 03 — Each switch resumes a greenlet exactly where it stopped.
//
// A starts and switches to B; B switches back, and A continues after its first
// switch_to; A switches to B again, and B continues after its own. Creating a greenlet
// runs nothing: it runs only when switched to. B ends first, so control returns to its
// parent, main, and A is left suspended until its handle is dropped.
//
// Retells the greenlet example of the tutorials' coroutine chapters: A and B (another
// tutorial calls them func1 and func2 and prints 1, 3, 2, 4). The Python program:
//
//   import greenlet
//
//   def A():
//       print('a.....')
//       g2.switch()  # switch to B
//       print('a....2')
//       g2.switch()
//
//   def B():
//       print('b.....')
//       g1.switch()  # switch to A
//       print('b....2')
//
//   g1 = greenlet.greenlet(A)  # "start a thread", says the tutorial: it starts nothing
//   g2 = greenlet.greenlet(B)
//   g1.switch()
#include <iostream>

#include <greenlets/greenlets.hpp>

greenlets::greenlet g1;
greenlets::greenlet g2;

void A() {
  std::cout << "a.....\n";
  g2.switch_to();  // switch to B (starting it)
  std::cout << "a....2\n";
  g2.switch_to();  // switch to B again: it continues after its own switch_to
}

void B() {
  std::cout << "b.....\n";
  g1.switch_to();  // switch to A: it continues after its first switch_to
  std::cout << "b....2\n";
}  // B ends: back to its parent, main (A stays suspended and is unwound when dropped)

int main() {
  g1 = greenlets::greenlet(A);  // starts nothing yet:
  g2 = greenlets::greenlet(B);  // a greenlet only runs when switched to
  g1.switch_to();               // returns when B ends

  // A still waits in its second switch_to; dropping the handles unwinds it.
  g1 = greenlets::greenlet();
  g2 = greenlets::greenlet();
}

// Expected output:
// a.....
// b.....
// a....2
// b....2
