// Waiting in a test for something another thread does.
#ifndef CANOPY_TESTS_TESTING_EVENTUALLY_H_
#define CANOPY_TESTS_TESTING_EVENTUALLY_H_

#include <chrono>
#include <functional>
#include <thread>

namespace canopy::testing {

// Polls `done` every 5 ms for up to `timeout`; true as soon as it holds,
// false when the time ran out. The timeout is generous: a loaded machine
// may take seconds for what usually takes milliseconds.
inline bool EventuallyTrue(const std::function<bool()>& done,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_EVENTUALLY_H_
