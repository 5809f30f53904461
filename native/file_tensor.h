// Reads checkpoint storages from a file region straight into tensor memory
// (pread), so loading never holds the whole file in a JS Buffer.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace vggn {

struct FileTensorSource {
  std::string path;
  int64_t byteOffset = 0;
  torch::ScalarType dtype = torch::kFloat32;
  int64_t storageNumel = 0;
  int64_t storageOffset = 0;
  std::vector<int64_t> shape, stride;
  bool bigEndian = false;
};

torch::ScalarType parseStorageDType(const std::string& name);

/** Checks the view fits its storage and the storage fits the file. */
void validateFileSource(const FileTensorSource& src, int64_t fileSize);

/**
 * Copies the source into `dest` (any dtype/device; converted as copy_ does).
 * When the bytes already match dest's layout (CPU, same dtype, contiguous,
 * little-endian) they are read straight into dest's memory.
 */
void loadFileTensorInto(const FileTensorSource& src, torch::Tensor dest);

/** The source as a standalone CPU tensor of its own dtype. */
torch::Tensor readFileTensor(const FileTensorSource& src);

}  // namespace vggn
