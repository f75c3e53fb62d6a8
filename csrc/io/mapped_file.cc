// Memory mapping of a model file, read-only and shared (pages come from the page cache, not the
// heap): POSIX mmap, or CreateFileMapping + MapViewOfFile on Windows.
#include "io/mapped_file.h"

#include <cerrno>
#include <cstring>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "llmasos/errors.hpp"

namespace llmasos {

#if defined(_WIN32)
namespace {

// The system's text for GetLastError() code `e`.
std::string win_error(DWORD e) {
  char buf[512];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, e, 0, buf,
                           sizeof(buf), nullptr);
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == ' ')) --n;
  return n ? std::string(buf, n) : "error " + std::to_string(e);
}

// UTF-8 path -> UTF-16 for the W functions (paths from Python arrive as UTF-8).
std::wstring widen(const std::string& s) {
  if (s.empty()) return std::wstring();
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<size_t>(n > 0 ? n : 0), L'\0');
  if (n > 0) MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), &w[0], n);
  return w;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const std::wstring wpath = widen(path);
  DWORD attrs = GetFileAttributesW(wpath.c_str());
  if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
    throw ModelFormatError("'" + path + "' is not a regular file");
  HANDLE file = CreateFileW(wpath.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                            OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) throw Error("cannot open '" + path + "': " + win_error(GetLastError()));
  if (GetFileType(file) != FILE_TYPE_DISK) {
    CloseHandle(file);
    throw ModelFormatError("'" + path + "' is not a regular file");
  }
  LARGE_INTEGER sz;
  if (!GetFileSizeEx(file, &sz)) {
    DWORD e = GetLastError();
    CloseHandle(file);
    throw Error("cannot stat '" + path + "': " + win_error(e));
  }
  size_ = static_cast<uint64_t>(sz.QuadPart);
  if (size_ > 0) {
    // The view keeps the mapping (and the file) alive; both handles close here.
    HANDLE mapping = CreateFileMappingW(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
    if (!mapping) {
      DWORD e = GetLastError();
      CloseHandle(file);
      throw Error("cannot mmap '" + path + "': " + win_error(e));
    }
    void* p = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    DWORD e = GetLastError();
    CloseHandle(mapping);
    if (!p) {
      CloseHandle(file);
      throw Error("cannot mmap '" + path + "': " + win_error(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  CloseHandle(file);
}

void MappedFile::drop_pages(const void*, uint64_t) const {}  // the pages stay (no cheap hint)

MappedFile::~MappedFile() {
  if (data_) UnmapViewOfFile(data_);
}

#else  // POSIX

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelFormatError("'" + path + "' is not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error("cannot mmap '" + path + "': " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

void MappedFile::drop_pages(const void* p, uint64_t n) const {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t off = static_cast<uint64_t>(static_cast<const uint8_t*>(p) - data_);
  if (!data_ || off > size_ || n > size_ - off || page == 0) return;
  const uint64_t a = (off + page - 1) / page * page, b = (off + n) / page * page;
  if (b > a) ::madvise(const_cast<uint8_t*>(data_) + a, b - a, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

#endif

}  // namespace llmasos
