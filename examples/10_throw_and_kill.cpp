// 10 — Raising into a greenlet, and killing it: throw_to.
//
// `g.throw_to(e)` switches to `g` and raises `e` there, at the switch_to where `g` is
// suspended: `g` may catch it and switch back (throw_to returns what it sends), or let
// it escape `run`, and then it goes to g's parent like any exception. `g.throw_to()`
// with no argument throws `greenlet_exit`: the kill. It unwinds g's stack (destructors
// and catch blocks run) and comes back as a value holding the `greenlet_exit`, not as
// an exception. Thrown into a greenlet that has not started, `run` never runs.
//
// Not in the tutorial; this is Python greenlet's `g.throw()`. The Python program (run
// with greenlet 2.0.2, it prints the same lines, spelt GreenletExit and True):
//
//   from greenlet import greenlet, getcurrent, GreenletExit
//   main = getcurrent()
//
//   def worker():
//       try:
//           while True:
//               job = main.switch('ready')
//               print('worker: job', job)
//       except ValueError as e:
//           print('worker: caught', e)
//           main.switch('recovered')
//       finally:
//           print('worker: cleaning up')
//
//   w = greenlet(worker)
//   print(w.switch())                          # ready
//   print(w.switch(1))                         # ready
//   print(w.throw(ValueError('bad job')))      # recovered
//   r = w.throw()                              # GreenletExit: kill
//   print('killed:', type(r).__name__, w.dead)
//
//   def fragile():
//       main.switch()
//       print('never printed')
//   f = greenlet(fragile)
//   f.switch()
//   try:
//       f.throw(RuntimeError('boom'))
//   except RuntimeError as e:
//       print('main caught:', e, 'dead:', f.dead)
//
//   def never():
//       print('never runs')
//   u = greenlet(never)
//   try:
//       u.throw(RuntimeError('too early'))
//   except RuntimeError as e:
//       print('main caught:', e, 'started:', bool(u), 'dead:', u.dead)
#include <iostream>
#include <stdexcept>
#include <string>

#include <greenlets/greenlets.hpp>

greenlets::greenlet main_greenlet;

// Python's `finally:` — a destructor runs however the stack unwinds.
struct clean_up {
  ~clean_up() { std::cout << "worker: cleaning up\n"; }
};

void worker() {
  clean_up finally;
  try {
    for (;;) {
      int job = main_greenlet.switch_to("ready").get<int>();
      std::cout << "worker: job " << job << '\n';
    }
  } catch (const std::invalid_argument& e) {  // Python's ValueError
    std::cout << "worker: caught " << e.what() << '\n';
    main_greenlet.switch_to("recovered");
  }
  // A kill (greenlet_exit) is not a std::exception: it passes the catch above, the
  // destructor of `finally` runs, and it leaves run. Never swallow it.
}

int main() {
  std::cout << std::boolalpha;
  main_greenlet = greenlets::current();

  greenlets::greenlet w(worker);
  std::cout << w.switch_to().get<std::string>() << '\n';   // ready
  std::cout << w.switch_to(1).get<std::string>() << '\n';  // ready
  // Raised at the worker's pending switch_to; it catches it and sends "recovered".
  std::cout << w.throw_to(std::invalid_argument("bad job")).get<std::string>() << '\n';
  // The kill: greenlet_exit unwinds the worker and comes back as a value.
  greenlets::value r = w.throw_to();
  std::cout << "killed: " << (r.holds<greenlets::greenlet_exit>() ? "greenlet_exit" : "?") << ' '
            << w.dead() << '\n';

  // An exception the target does not catch kills it and goes to its parent: here the
  // parent is main, the thrower, so it comes out of throw_to.
  greenlets::greenlet f([] {
    main_greenlet.switch_to();
    std::cout << "never printed\n";
  });
  f.switch_to();
  try {
    f.throw_to(std::runtime_error("boom"));
  } catch (const std::runtime_error& e) {
    std::cout << "main caught: " << e.what() << " dead: " << f.dead() << '\n';
  }

  // Into a greenlet that has not started: run never runs, the greenlet is dead, and
  // the exception goes to its parent (main) at once.
  greenlets::greenlet u([] { std::cout << "never runs\n"; });
  try {
    u.throw_to(std::runtime_error("too early"));
  } catch (const std::runtime_error& e) {
    std::cout << "main caught: " << e.what() << " started: " << u.started() << " dead: " << u.dead()
              << '\n';
  }
}

// Expected output:
// ready
// worker: job 1
// ready
// worker: caught bad job
// recovered
// worker: cleaning up
// killed: greenlet_exit true
// main caught: boom dead: true
// main caught: too early started: false dead: true
