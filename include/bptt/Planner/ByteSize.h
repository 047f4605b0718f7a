//===- ByteSize.h - parsing and printing byte counts ------------*- C++ -*-===//

#ifndef BPTT_PLANNER_BYTESIZE_H
#define BPTT_PLANNER_BYTESIZE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace bptt::planner {

/// Parses "1048576", "64MiB", "1.5GB", "512 KiB", "2G". Binary suffixes
/// (KiB, MiB, GiB, TiB, and bare K, M, G, T) are powers of 1024; decimal ones
/// (KB, MB, GB, TB) powers of 1000. B is optional. The result is rounded
/// down to a whole byte and must be positive.
llvm::Expected<int64_t> parseByteSize(llvm::StringRef text);

/// "67108864 B (64.0 MiB)"-style rendering for humans.
std::string formatBytes(int64_t bytes);

} // namespace bptt::planner

#endif
