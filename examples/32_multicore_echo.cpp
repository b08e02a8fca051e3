// 32 — processes × threads × coroutines: an echo server on several threads, each with
// its own hub, all accepting on one port.
//
// From the tutorial's closing advice: one thread runs one hub, so to use every core,
// run a hub per thread (or per process) and let many tasks share each. Each thread
// here listens on the same port with SO_REUSEPORT, and the kernel spreads the
// incoming connections over their listeners; within a thread, one task per
// connection upper-cases the lines it reads, as in example 30.
#include <atomic>
#include <cctype>
#include <future>
#include <iostream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <greenlets/hub.hpp>
#include <greenlets/net.hpp>

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// One server thread: its own hub, its own listener on the shared port.
struct server_thread {
  std::promise<greenlets::hub*> hub_ready;
  greenlets::tcp_listener* listener = nullptr;  // lives on the thread's stack
  std::atomic<int> served{0};
  std::thread thread;

  void run(std::uint16_t port, std::promise<std::uint16_t>* bound) {
    greenlets::tcp_listener l = greenlets::listen("127.0.0.1", port, {512, true});
    listener = &l;
    if (bound != nullptr) bound->set_value(l.local_endpoint().port());
    hub_ready.set_value(&greenlets::hub::current());
    auto acceptor = greenlets::spawn([&] {
      try {
        for (;;) {
          greenlets::spawn(
              [this](greenlets::tcp_socket conn) {
                ++served;
                for (std::string line; !(line = conn.read_line(1024)).empty();) {
                  conn.write_all(upper(line));
                }
              },
              l.accept());
        }
      } catch (const std::system_error&) {
        // the listener was closed: stop accepting
      }
    });
    acceptor.join();
    greenlets::wait();  // the connections' tasks end as their clients close
  }
};

int main() {
  constexpr std::size_t threads = 2;
  constexpr int clients = 200;
  constexpr int messages = 3;

  // The first thread picks the port; the others listen on the same one.
  std::vector<server_thread> servers(threads);
  std::promise<std::uint16_t> bound;
  servers[0].thread = std::thread([&] { servers[0].run(0, &bound); });
  const std::uint16_t port = bound.get_future().get();
  for (std::size_t i = 1; i < threads; ++i) {
    servers[i].thread = std::thread([&, i] { servers[i].run(port, nullptr); });
  }
  std::vector<greenlets::hub*> hubs;
  for (auto& s : servers) hubs.push_back(s.hub_ready.get_future().get());
  std::cout << threads << " server threads, each with its own hub, on one port\n";

  // The clients: tasks on the main thread's hub.
  std::atomic<int> good{0};
  std::vector<greenlets::task<void>> tasks;
  for (int i = 0; i < clients; ++i) {
    tasks.push_back(greenlets::spawn([&, i] {
      greenlets::tcp_socket s = greenlets::connect("127.0.0.1", port);
      for (int k = 0; k < messages; ++k) {
        const std::string msg = "line " + std::to_string(i) + "." + std::to_string(k) + "\n";
        s.write_all(msg);
        if (s.read_line() == upper(msg)) ++good;
      }
    }));
  }
  greenlets::joinall(tasks);

  // Stop: each listener is closed in its own thread (post runs a function in a hub).
  for (std::size_t i = 0; i < threads; ++i) {
    hubs[i]->post([&s = servers[i]] { s.listener->close(); });
  }
  int total = 0;
  bool all_served = true;
  for (auto& s : servers) {
    s.thread.join();
    total += s.served;
    all_served = all_served && s.served > 0;
  }
  std::cout << clients << " clients, " << good << " of " << clients * messages
            << " replies upper-cased\n";
  std::cout << "connections served: " << total << '\n';
  std::cout << "every thread served some: " << (all_served ? "yes" : "no") << '\n';
}

// Expected output:
// 2 server threads, each with its own hub, on one port
// 200 clients, 600 of 600 replies upper-cased
// connections served: 200
// every thread served some: yes
