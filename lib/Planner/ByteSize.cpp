//===- ByteSize.cpp - parsing and printing byte counts --------------------===//

#include "bptt/Planner/ByteSize.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>

using namespace bptt::planner;

llvm::Expected<int64_t> bptt::planner::parseByteSize(llvm::StringRef text) {
  llvm::StringRef s = text.trim();
  size_t numberEnd = s.find_first_not_of("0123456789.eE+");
  llvm::StringRef number = s.substr(0, numberEnd);
  llvm::StringRef suffix = s.substr(number.size()).trim();
  double value;
  auto invalid = [&] {
    return llvm::createStringError(
        "'%s' is not a byte size; expected a positive number with an "
        "optional unit such as 1048576, 64MiB, 1.5GB or 512KiB",
        text.str().c_str());
  };
  if (number.empty() || number.getAsDouble(value) || !(value > 0))
    return invalid();
  std::optional<double> scale =
      llvm::StringSwitch<std::optional<double>>(suffix)
          .Cases({"", "B", "b"}, 1.0)
          .Cases({"K", "k", "KiB", "kiB"}, 1024.0)
          .Cases({"M", "MiB"}, 1024.0 * 1024)
          .Cases({"G", "GiB"}, 1024.0 * 1024 * 1024)
          .Cases({"T", "TiB"}, 1024.0 * 1024 * 1024 * 1024)
          .Cases({"KB", "kB"}, 1e3)
          .Case("MB", 1e6)
          .Case("GB", 1e9)
          .Case("TB", 1e12)
          .Default(std::nullopt);
  if (!scale)
    return llvm::createStringError(
        "unknown unit '%s' in '%s'; use B, KiB, MiB, GiB, TiB (powers of "
        "1024), KB, MB, GB, TB (powers of 1000) or K, M, G, T (1024)",
        suffix.str().c_str(), text.str().c_str());
  double bytes = std::floor(value * *scale);
  if (bytes < 1 || bytes > 9.2e18)
    return invalid();
  return static_cast<int64_t>(bytes);
}

std::string bptt::planner::formatBytes(int64_t bytes) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << bytes << " B";
  static const char *units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = bytes;
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  if (u >= 0)
    os << " (" << llvm::format("%.2f", v) << ' ' << units[u] << ')';
  return out;
}
