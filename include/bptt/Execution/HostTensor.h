//===- HostTensor.h - a tensor or scalar in host memory ---------*- C++ -*-===//
//
// The values that JIT-compiled functions take and return: f32, f64 or i64,
// a ranked tensor or identity-layout memref (row-major, contiguous) or a
// scalar.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_EXECUTION_HOSTTENSOR_H
#define BPTT_EXECUTION_HOSTTENSOR_H

#include "mlir/IR/Types.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace bptt {

enum class ElementKind { F32, F64, I64 };

/// What a function argument or result is, independent of any MLIRContext.
struct ValueShape {
  ElementKind kind = ElementKind::F32;
  bool isTensor = false;
  std::vector<int64_t> shape; // empty for scalars and 0-d tensors

  int64_t numElements() const;
  int64_t elementBytes() const { return kind == ElementKind::F32 ? 4 : 8; }
  /// A static f32/f64/i64 tensor, identity-layout memref or scalar type; an
  /// error names anything else.
  static llvm::Expected<ValueShape> of(mlir::Type type);
};

class HostTensor {
public:
  HostTensor() = default;
  /// Zero-filled.
  explicit HostTensor(ValueShape shape);

  const ValueShape &shape() const { return desc; }
  int64_t size() const { return desc.numElements(); }
  /// Element i as a double (i64 elements converted).
  double get(int64_t i) const;
  int64_t getInt(int64_t i) const;
  void set(int64_t i, double v);
  void *data() { return bytes.data(); }
  const void *data() const { return bytes.data(); }
  int64_t byteSize() const { return int64_t(bytes.size()); }

  /// Fills with uniform values in [lo, hi) from a fixed-seed generator.
  void fillUniform(uint64_t seed, double lo, double hi);
  /// Bitwise equality (same shape and element kind).
  bool bitwiseEqual(const HostTensor &other) const;
  /// FNV-1a over the bytes: a short fingerprint of the exact values.
  uint64_t fingerprint() const;

private:
  ValueShape desc;
  std::vector<unsigned char> bytes;
};

} // namespace bptt

#endif // BPTT_EXECUTION_HOSTTENSOR_H
