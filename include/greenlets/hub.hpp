// The hub: gevent's cooperative scheduling on greenlets. One hub per thread runs an
// event loop in its own greenlet; blocking calls (sleep, join, queue get, fd waits...)
// switch to it, and it switches back when the thing waited for is ready.
//
//   #include <greenlets/hub.hpp>
//   auto t = greenlets::spawn([] { greenlets::sleep(10ms); return 42; });
//   int v = t.get();                       // runs the loop until t has finished
#ifndef GREENLETS_HUB_HPP
#define GREENLETS_HUB_HPP

#include "greenlets/hub/errors.hpp"
#include "greenlets/hub/hub.hpp"
#include "greenlets/hub/io.hpp"
#include "greenlets/hub/pool.hpp"
#include "greenlets/hub/queue.hpp"
#include "greenlets/hub/sync.hpp"
#include "greenlets/hub/task.hpp"
#include "greenlets/hub/thread_pool.hpp"
#include "greenlets/hub/timeout.hpp"

#endif  // GREENLETS_HUB_HPP
