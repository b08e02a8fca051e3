// 03 — A and B: each switches to the other twice.
//
// From document 001, "(2)greenlet模块实现程序间切换执行" (switching between functions
// with greenlet), and the same program as func1/func2 in document 003 (6.1.1).
// A starts, switches to B, B switches back to A, A switches to B again, B ends.
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
  g1 = greenlets::greenlet(A);  // "启动一个线程" says the document: it starts nothing yet;
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
