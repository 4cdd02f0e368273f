#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace residual {

// Dimensions of a tensor. Image activations are N x H x W x C (channels last, as in
// Keras); layer shapes given without the batch dimension are H x W x C.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  size_t rank() const { return dims_.size(); }
  int64_t operator[](size_t i) const { return dims_[i]; }
  int64_t& operator[](size_t i) { return dims_[i]; }
  int64_t numel() const;
  const std::vector<int64_t>& dims() const { return dims_; }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

  // The same shape with a leading batch dimension.
  Shape with_batch(int64_t n) const;
  // The shape without its leading dimension.
  Shape without_batch() const;
  // "32x32x16"
  std::string str() const;

 private:
  std::vector<int64_t> dims_;
};

}  // namespace residual
