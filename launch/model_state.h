#pragma once
// Moving a model's tensors into and out of a checkpoint.
#include <ostream>

#include "core/model.h"
#include "io/checkpoint.h"

namespace residual {

// The model's parameters and buffers into `checkpoint`: host tensors as they are (shared
// storage, no copy), tensors on a GPU as host copies, so a checkpoint never holds device
// memory and its file does not depend on the device that trained it.
void store_weights(Model& model, Checkpoint& checkpoint);
// `t` itself on the host, else a copy of it there.
Tensor host_copy(const Tensor& t);

// Copies matching tensors from `checkpoint` into `model`. Strict: any missing,
// unexpected or wrong-shaped tensor is an Error listing every one by name (with both
// shapes). Non-strict: loads what matches and writes what it skipped to `report`.
void load_weights(Model& model, const Checkpoint& checkpoint, bool strict, std::ostream& report,
                  const std::string& origin);

}  // namespace residual
