#include "core/tensor.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/device_memory.h"
#include "core/error.h"

namespace residual {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kBFloat16: return 2;
    case DType::kFloat16: return 2;
    case DType::kInt32: return 4;
    case DType::kUInt8: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat16: return "float16";
    case DType::kInt32: return "int32";
    case DType::kUInt8: return "uint8";
  }
  return "?";
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : str_cat("cuda:", index);
}

int64_t Shape::numel() const {
  return std::accumulate(dims_.begin(), dims_.end(), int64_t{1}, std::multiplies<>());
}

Shape Shape::with_batch(int64_t n) const {
  std::vector<int64_t> dims{n};
  dims.insert(dims.end(), dims_.begin(), dims_.end());
  return Shape(std::move(dims));
}

Shape Shape::without_batch() const {
  RESIDUAL_CHECK(!dims_.empty(), "shape has no batch dimension to drop");
  return Shape(std::vector<int64_t>(dims_.begin() + 1, dims_.end()));
}

std::string Shape::str() const {
  std::string out;
  for (size_t i = 0; i < dims_.size(); ++i) out += (i ? "x" : "") + std::to_string(dims_[i]);
  return out.empty() ? "scalar" : out;
}

Storage::Storage(Device device, size_t bytes)
    : device_(device), bytes_(bytes), data_(device_alloc(device, bytes)) {}

Storage::~Storage() { device_free(device_, data_); }

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  Tensor t;
  t.resize(shape, device, dtype);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  t.zero();
  return t;
}

void* Tensor::device_raw() const {
  RESIDUAL_CHECK(defined(), "use of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

float* Tensor::device_f32() const {
  RESIDUAL_CHECK(dtype_ == DType::kFloat32, "expected a float32 tensor, got ", dtype_name(dtype_));
  return static_cast<float*>(device_raw());
}

void* Tensor::raw() const {
  RESIDUAL_CHECK(device_.is_cpu(), "a ", shape_.str(), " tensor on ", device_.str(),
                 ": host access needs a copy on the host first (.to(Device::cpu())); a ",
                 device_.str(), " kernel takes device_raw()/device_f32()");
  return device_raw();
}

float* Tensor::f32() const {
  RESIDUAL_CHECK(dtype_ == DType::kFloat32, "expected a float32 tensor, got ", dtype_name(dtype_));
  return static_cast<float*>(raw());
}

void Tensor::resize(const Shape& shape) {
  RESIDUAL_CHECK(defined(), "resize of an undefined tensor to ", shape.str(),
                 " needs a device: resize(shape, like) or resize(shape, device, dtype)");
  resize(shape, device_, dtype_);
}

void Tensor::resize(const Shape& shape, const Tensor& like) {
  RESIDUAL_CHECK(like.defined(), "resize to ", shape.str(),
                 " like an undefined tensor: it has no device to follow");
  resize(shape, like.device(), like.dtype());
}

void Tensor::resize(const Shape& shape, Device device, DType dtype) {
  for (int64_t d : shape.dims()) RESIDUAL_CHECK(d >= 0, "negative dimension in shape ", shape.str());
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  if (!storage_ || storage_->device() != device ||
      std::min(storage_->bytes() - offset_, limit_) < bytes) {
    storage_ = std::make_shared<Storage>(device, std::max<size_t>(bytes, 1));
    offset_ = 0;
    limit_ = SIZE_MAX;
  }
  shape_ = shape;
  dtype_ = dtype;
  device_ = device;
}

Tensor Tensor::view(const Shape& shape) const {
  RESIDUAL_CHECK(shape.numel() == numel(), "cannot view a ", shape_.str(), " tensor as ",
                 shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::view_at(int64_t offset, const Shape& shape) const {
  const size_t begin = static_cast<size_t>(offset) * dtype_size(dtype_);
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype_);
  RESIDUAL_CHECK(offset >= 0 && begin + bytes <= nbytes(), "a view of ", shape.str(), " at element ",
                 offset, " does not fit in a ", shape_.str(), " tensor");
  Tensor t = *this;
  t.offset_ = offset_ + begin;
  t.limit_ = bytes;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, device, dtype_);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  RESIDUAL_CHECK(src.numel() == numel() && src.dtype() == dtype_, "copy of a ",
                 src.shape().str(), " ", dtype_name(src.dtype()), " tensor into a ",
                 shape_.str(), " ", dtype_name(dtype_), " tensor");
  if (nbytes() == 0 || device_raw() == src.device_raw()) return;
  device_copy(device_raw(), device_, src.device_raw(), src.device(), nbytes());
}

void Tensor::zero() {
  if (nbytes() > 0) device_memset_zero(device_, device_raw(), nbytes());
}

const Tensor& on_device(const Tensor& t, Device device, Tensor& buffer) {
  if (t.device() == device) return t;
  buffer.resize(t.shape(), device, t.dtype());
  buffer.copy_from(t);
  return buffer;
}

void move_all_to(const std::vector<Tensor*>& tensors, Device device) {
  if (device.is_cuda()) {
    RESIDUAL_CHECK(cuda_compiled(), "cannot use ", device.str(),
                   ": this residual was built without CUDA");
    const int count = cuda_device_count();
    RESIDUAL_CHECK(device.index >= 0 && device.index < count, "cannot use ", device.str(), ": ",
                   count == 0 ? std::string("this machine has no CUDA device")
                              : str_cat("CUDA devices here are cuda:0 to cuda:", count - 1));
  }
  std::vector<Tensor> moved(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = *tensors[i];
    if (t.defined() && t.device() != device) moved[i] = t.to(device);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (moved[i].defined()) *tensors[i] = std::move(moved[i]);
  }
}

void Tensor::fill(float value) {
  RESIDUAL_CHECK(device_.is_cpu(), "Tensor::fill runs on the CPU only, and this ", shape_.str(),
                 " tensor is on ", device_.str());
  std::fill_n(f32(), numel(), value);
}

}  // namespace residual
