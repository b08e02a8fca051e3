// A consumer of an installed greenlets: found with find_package(greenlets), linked with
// greenlets::greenlets and nothing else. Exits 0 when a greenlet switches correctly.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <greenlets/greenlets.hpp>

int main() {
  try {
    // The child adds what the first switch sends to what the second one sends.
    greenlets::greenlet child([](int x) {
      int y = greenlets::current().parent().switch_to(std::string("ready")).get<int>();
      return x + y;
    });
    std::string first = child.switch_to(40).get<std::string>();
    int sum = child.switch_to(2).get<int>();
    if (first != "ready" || sum != 42 || !child.dead()) {
      std::printf("find_package consumer: got \"%s\" and %d (dead: %d)\n", first.c_str(), sum,
                  child.dead() ? 1 : 0);
      return 1;
    }
    if (std::strcmp(greenlets::version_string, PACKAGE_VERSION_FOUND) != 0) {
      std::printf("find_package consumer: version.hpp says %s, the package %s\n",
                  greenlets::version_string, PACKAGE_VERSION_FOUND);
      return 1;
    }
    std::printf("find_package consumer: greenlets %s works\n", greenlets::version_string);
    return 0;
  } catch (const std::exception& e) {
    std::printf("find_package consumer: %s\n", e.what());
    return 1;
  }
}
