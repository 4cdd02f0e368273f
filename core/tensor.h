#pragma once
#include <cstdint>
#include <cstddef>
#include <memory>
#include <vector>

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
  // Factories make host tensors unless given a device (parameters are made on the host
  // and moved with Model::to).
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

  // Host pointers, for host code and CPU kernels: a tensor on another device is an Error
  // naming it, so host code cannot dereference device memory by accident.
  void* raw() const;
  float* f32() const;  // also checks dtype float32
  template <typename T>
  T* data() const { return static_cast<T*>(raw()); }
  // The data pointer on the tensor's own device, whichever it is: for that device's
  // kernels and for copies. Dereference it on the host only after checking is_cpu().
  void* device_raw() const;
  float* device_f32() const;  // also checks dtype float32
  template <typename T>
  T* device_data() const { return static_cast<T*>(device_raw()); }

  // Resizing makes this tensor `shape`, keeping its storage when it is large enough and
  // on the right device: the way layers reuse their buffers from step to step without
  // allocating. No overload picks a device silently (an output of a CUDA input once
  // landed on the host that way):
  // - resize(shape) keeps this tensor's device and dtype; an undefined tensor has
  //   neither, so there it is an Error;
  // - resize(shape, like) / resize_like(like): the device and dtype of `like`, how an
  //   op's output follows its input;
  // - resize(shape, device, dtype): stated outright (host buffers, labels).
  void resize(const Shape& shape);
  void resize(const Shape& shape, const Tensor& like);
  void resize(const Shape& shape, Device device, DType dtype = DType::kFloat32);
  void resize_like(const Tensor& like) { resize(like.shape(), like); }
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
  friend class TensorTestPeer;  // tests: a CUDA-labelled tensor on a machine without a GPU

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;               // bytes into storage_
  size_t limit_ = SIZE_MAX;         // bytes this tensor may use from offset_ (views)
  Shape shape_;
  DType dtype_ = DType::kFloat32;
  Device device_;
};

// `t` itself when it is on `device` already, else a copy of it in `buffer` (resized there,
// so its storage is reused from call to call): how host batches reach a GPU model and its
// logits come back to the host, with no copy at all on the CPU path.
const Tensor& on_device(const Tensor& t, Device device, Tensor& buffer);
inline const Tensor& on_host(const Tensor& t, Tensor& buffer) {
  return on_device(t, Device::cpu(), buffer);
}

// Moves every defined tensor to `device`, all or nothing: the copies are made first,
// so a failure (no such device, out of memory) leaves every tensor where it was. A CUDA
// device this process cannot use is an Error saying why before anything is copied.
void move_all_to(const std::vector<Tensor*>& tensors, Device device);

}  // namespace residual
