// Helpers shared by the tests: fresh temporary directories and files.

#ifndef SSLSWEEP_TESTS_TEST_UTIL_H_
#define SSLSWEEP_TESTS_TEST_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"

namespace sslsweep {

// A new empty directory under the test temp dir, unique per call.
inline std::string FreshTempDir(const std::string& name) {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (std::string("sslsweep-") + (info ? info->name() : "test") + "-" + name + "-" +
       std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// FreshTempDir as a path, for code that joins paths with operator/.
inline std::filesystem::path TempDir(const std::string& name) {
  return std::filesystem::path(FreshTempDir(name));
}

inline std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The whole file; empty if it cannot be read.
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace sslsweep

#endif  // SSLSWEEP_TESTS_TEST_UTIL_H_
