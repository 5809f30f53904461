#include "file_tensor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace vggn {

torch::ScalarType parseStorageDType(const std::string& name) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"float32", torch::kFloat32}, {"float16", torch::kFloat16}, {"bfloat16", torch::kBFloat16}, {"float64", torch::kFloat64},
      {"int64", torch::kInt64},     {"int32", torch::kInt32},     {"int16", torch::kInt16},       {"int8", torch::kInt8},
      {"uint8", torch::kUInt8},     {"bool", torch::kBool}};
  auto it = types.find(name);
  TORCH_CHECK(it != types.end(), "unsupported storage dtype '", name, "'");
  return it->second;
}

namespace {

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    TORCH_CHECK(fd_ >= 0, "cannot open ", path, ": ", std::strerror(errno));
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int64_t size() const {
    struct stat st;
    TORCH_CHECK(::fstat(fd_, &st) == 0, "cannot stat: ", std::strerror(errno));
    return st.st_size;
  }

 private:
  int fd_;
};

void preadAll(const Fd& fd, void* dst, int64_t bytes, int64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(dst);
  while (bytes > 0) {
    ssize_t n = ::pread(fd.get(), p, static_cast<size_t>(std::min<int64_t>(bytes, 1 << 30)), offset);
    if (n < 0 && errno == EINTR) continue;
    TORCH_CHECK(n > 0, "reading ", path, " at byte ", offset, ": ", n == 0 ? "unexpected end of file" : std::strerror(errno));
    p += n;
    bytes -= n;
    offset += n;
  }
}

void byteswap(torch::Tensor& t) {
  int64_t size = t.element_size();
  if (size == 1) return;
  auto* p = static_cast<uint8_t*>(t.data_ptr());
  for (int64_t i = 0, n = t.numel(); i < n; ++i, p += size) std::reverse(p, p + size);
}

}  // namespace

void validateFileSource(const FileTensorSource& src, int64_t fileSize) {
  TORCH_CHECK(src.shape.size() == src.stride.size(), "tensor has ", src.shape.size(), " sizes but ", src.stride.size(), " strides");
  TORCH_CHECK(src.storageNumel >= 0 && src.storageOffset >= 0 && src.byteOffset >= 0, "negative storage geometry");
  int64_t elem = c10::elementSize(src.dtype);
  TORCH_CHECK(src.storageNumel <= (INT64_MAX - src.byteOffset) / std::max<int64_t>(elem, 1), "storage size overflows");
  int64_t end = src.byteOffset + src.storageNumel * elem;
  TORCH_CHECK(end <= fileSize, "storage claims ", src.storageNumel * elem, " bytes at offset ", src.byteOffset, " but the file has ",
              fileSize, " bytes");
  int64_t numel = 1, last = src.storageOffset;
  for (size_t i = 0; i < src.shape.size(); ++i) {
    TORCH_CHECK(src.shape[i] >= 0 && src.stride[i] >= 0, "negative size or stride");
    numel *= src.shape[i];
    if (src.shape[i] > 0) last += (src.shape[i] - 1) * src.stride[i];
  }
  TORCH_CHECK(numel == 0 || last < src.storageNumel, "tensor view reaches element ", last, " of a storage of ", src.storageNumel);
}

static bool isContiguousView(const FileTensorSource& src) {
  int64_t expected = 1;
  for (size_t i = src.shape.size(); i-- > 0;) {
    if (src.shape[i] != 1 && src.stride[i] != expected) return false;
    expected *= src.shape[i];
  }
  return true;
}

torch::Tensor readFileTensor(const FileTensorSource& src) {
  Fd fd(src.path);
  validateFileSource(src, fd.size());
  auto storage = torch::empty({src.storageNumel}, torch::TensorOptions().dtype(src.dtype));
  preadAll(fd, storage.data_ptr(), src.storageNumel * storage.element_size(), src.byteOffset, src.path);
  if (src.bigEndian) byteswap(storage);
  return storage.as_strided(src.shape, src.stride, src.storageOffset);
}

void loadFileTensorInto(const FileTensorSource& src, torch::Tensor dest) {
  TORCH_CHECK(dest.sizes().equals(src.shape), "shape mismatch: checkpoint has ", c10::IntArrayRef(src.shape), ", model has ", dest.sizes());
  torch::NoGradGuard guard;
  if (dest.device().is_cpu() && dest.scalar_type() == src.dtype && dest.is_contiguous() && !src.bigEndian && isContiguousView(src)) {
    Fd fd(src.path);
    validateFileSource(src, fd.size());
    int64_t elem = dest.element_size();
    preadAll(fd, dest.data_ptr(), dest.numel() * elem, src.byteOffset + src.storageOffset * elem, src.path);
    dest.unsafeGetTensorImpl()->bump_version();  // written behind ATen's back: caches keyed by version (the engines') must see it
    return;
  }
  dest.copy_(readFileTensor(src));
}

}  // namespace vggn
