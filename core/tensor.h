#pragma once
#include <cstdint>
#include <cstddef>
#include <memory>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace residual {

// A block of device memory shared by tensors that view it.
class Storage {
 public:
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
  size_t bytes_;
  void* data_;
};

// Shape, dtype, device and shared storage. Copies between devices are explicit (to(),
// copy_from()); copying a Tensor object shares its storage.
class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, Device device = Device::cpu(),
                      DType dtype = DType::kFloat32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu(),
                      DType dtype = DType::kFloat32);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  size_t rank() const { return shape_.rank(); }
  int64_t dim(size_t i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  void* raw() const;
  float* f32() const;  // checks dtype float32
  template <typename T>
  T* data() const { return static_cast<T*>(raw()); }

  // Makes this tensor `shape`, keeping its storage when it is large enough: the way
  // layers reuse their buffers from step to step without allocating.
  void resize(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::kFloat32);
  // A view of the same storage with another shape of equal element count.
  Tensor view(const Shape& shape) const;
  // A view of `shape` that starts `offset` elements into this tensor's data: the
  // gradient reducer lays parameter gradients out inside its buckets this way. Resizing
  // the view never grows it past that region (it gets storage of its own instead).
  Tensor view_at(int64_t offset, const Shape& shape) const;
  // A copy on `device` (a copy even if the device is the same).
  Tensor to(Device device) const;
  Tensor clone() const { return to(device_); }
  // Copies the elements of `src` (same numel and dtype, any device) into this tensor.
  void copy_from(const Tensor& src);
  void zero();
  // CPU only: every element set to `value`.
  void fill(float value);
  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;               // bytes into storage_
  size_t limit_ = SIZE_MAX;         // bytes this tensor may use from offset_ (views)
  Shape shape_;
  DType dtype_ = DType::kFloat32;
  Device device_;
};

}  // namespace residual
