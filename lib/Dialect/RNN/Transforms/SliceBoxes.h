//===- SliceBoxes.h - static slice regions ----------------------*- C++ -*-===//
//
// Internal to the rnn transforms: the region a static, unit-stride slice op
// reads or writes, as a box, for rnn-differentiate (which adjoint regions are
// still zero, which slices cover a value) and the kernel preparation (which
// fills slices overwrite).
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_DIALECT_RNN_TRANSFORMS_SLICEBOXES_H
#define BPTT_LIB_DIALECT_RNN_TRANSFORMS_SLICEBOXES_H

#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace bptt::rnn {

/// Offsets and sizes per dimension of the larger tensor.
struct SliceBox {
  llvm::SmallVector<int64_t> offsets, sizes;

  int64_t volume() const;
  bool disjointFrom(const SliceBox &other) const;
};

/// The box of a unit-stride slice with static offsets and sizes, or nothing.
std::optional<SliceBox> staticBox(mlir::OffsetSizeAndStrideOpInterface slice);

/// Whether `boxes` are pairwise disjoint and together cover a tensor of
/// `numElements` elements.
bool coverExactly(llvm::ArrayRef<SliceBox> boxes, int64_t numElements);

} // namespace bptt::rnn

#endif // BPTT_LIB_DIALECT_RNN_TRANSFORMS_SLICEBOXES_H
