//===- SliceBoxes.cpp - static slice regions ------------------------------===//

#include "SliceBoxes.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;
using namespace bptt::rnn;

int64_t SliceBox::volume() const {
  int64_t v = 1;
  for (int64_t s : sizes)
    v *= s;
  return v;
}

bool SliceBox::disjointFrom(const SliceBox &other) const {
  for (size_t d = 0; d < offsets.size(); ++d)
    if (offsets[d] + sizes[d] <= other.offsets[d] ||
        other.offsets[d] + other.sizes[d] <= offsets[d])
      return true;
  return false;
}

std::optional<SliceBox>
bptt::rnn::staticBox(OffsetSizeAndStrideOpInterface slice) {
  if (!slice.hasUnitStride())
    return std::nullopt;
  std::optional<SmallVector<int64_t>> offsets =
      getConstantIntValues(slice.getMixedOffsets());
  std::optional<SmallVector<int64_t>> sizes =
      getConstantIntValues(slice.getMixedSizes());
  if (!offsets || !sizes)
    return std::nullopt;
  return SliceBox{*offsets, *sizes};
}

bool bptt::rnn::coverExactly(ArrayRef<SliceBox> boxes, int64_t numElements) {
  int64_t covered = 0;
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      if (!boxes[i].disjointFrom(boxes[j]))
        return false;
    covered += boxes[i].volume();
  }
  return !boxes.empty() && covered == numElements;
}
