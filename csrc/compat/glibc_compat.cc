// Keeps a Linux build made on a new glibc loadable on manylinux_2_28 (glibc 2.28): the linker's
// --wrap=SYMBOL sends every reference to a symbol whose default version is newer than 2.28 (ours
// and those of the static libstdc++) to __wrap_SYMBOL here, which calls the old version of the same
// function. Only built when the build machine's glibc is newer than 2.28 (LLMASOS_GLIBC_COMPAT);
// the list of wrapped symbols is LLMASOS_GLIBC_WRAPPED in cmake/llmasos_portable.cmake.
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

#if defined(__x86_64__)
#define LLMASOS_GLIBC_BASE "GLIBC_2.2.5"
#define LLMASOS_STAT_VER 1  // _STAT_VER_LINUX
#elif defined(__aarch64__)
#define LLMASOS_GLIBC_BASE "GLIBC_2.17"
#define LLMASOS_STAT_VER 0
#else
#error "glibc_compat.cc knows the base symbol versions of x86_64 and aarch64 only"
#endif

// old_NAME is NAME at the architecture's first glibc version (GLIBC_2.2.5 / GLIBC_2.17). The
// pthread functions moved from libpthread into libc in 2.34; before that the old versions live in
// libpthread.so.0, which the libraries therefore name as NEEDED.
#define LLMASOS_OLD(name) __asm__(".symver old_" #name "," #name "@" LLMASOS_GLIBC_BASE)

extern "C" {

// Every thread may be running: libstdc++ then always takes its atomic paths (GLIBC_2.32 data).
__attribute__((visibility("hidden"))) char __wrap___libc_single_threaded = 0;

double old_pow(double, double);  // GLIBC_2.29: the new pow without the SVID error wrapper
LLMASOS_OLD(pow);
__attribute__((visibility("hidden"))) double __wrap_pow(double x, double y) { return old_pow(x, y); }
double old_exp(double);  // GLIBC_2.29 likewise (the sampler's log-softmax in double)
LLMASOS_OLD(exp);
__attribute__((visibility("hidden"))) double __wrap_exp(double x) { return old_exp(x); }
double old_log(double);
LLMASOS_OLD(log);
__attribute__((visibility("hidden"))) double __wrap_log(double x) { return old_log(x); }

// fstat became a real symbol in 2.33; before, it was an inline call of __fxstat(_STAT_VER, ...).
int old___fxstat(int, int, struct stat*);
LLMASOS_OLD(__fxstat);
__attribute__((visibility("hidden"))) int __wrap_fstat(int fd, struct stat* st) {
  return old___fxstat(LLMASOS_STAT_VER, fd, st);
}
int old___xstat(int, const char*, struct stat*);
LLMASOS_OLD(__xstat);
__attribute__((visibility("hidden"))) int __wrap_stat(const char* path, struct stat* st) {
  return old___xstat(LLMASOS_STAT_VER, path, st);
}
int old___lxstat(int, const char*, struct stat*);
LLMASOS_OLD(__lxstat);
__attribute__((visibility("hidden"))) int __wrap_lstat(const char* path, struct stat* st) {
  return old___lxstat(LLMASOS_STAT_VER, path, st);
}
int old___fxstat64(int, int, struct stat64*);
LLMASOS_OLD(__fxstat64);
__attribute__((visibility("hidden"))) int __wrap_fstat64(int fd, struct stat64* st) {
  return old___fxstat64(LLMASOS_STAT_VER, fd, st);
}

// GLIBC_2.36, used by std::random_device: getentropy (2.25), else /dev/urandom.
__attribute__((visibility("hidden"))) uint32_t __wrap_arc4random(void) {
  uint32_t v = 0;
  if (getentropy(&v, sizeof v) == 0) return v;
  if (FILE* f = std::fopen("/dev/urandom", "rb")) {
    size_t n = std::fread(&v, sizeof v, 1, f);
    std::fclose(f);
    if (n == 1) return v;
  }
  static uint64_t state = 0x9e3779b97f4a7c15ull ^ reinterpret_cast<uintptr_t>(&v);
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<uint32_t>(state >> 32);
}

int old_pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
LLMASOS_OLD(pthread_create);
__attribute__((visibility("hidden"))) int __wrap_pthread_create(pthread_t* t, const pthread_attr_t* a,
                                                                void* (*fn)(void*), void* arg) {
  return old_pthread_create(t, a, fn, arg);
}
int old_pthread_join(pthread_t, void**);
LLMASOS_OLD(pthread_join);
__attribute__((visibility("hidden"))) int __wrap_pthread_join(pthread_t t, void** r) { return old_pthread_join(t, r); }
int old_pthread_detach(pthread_t);
LLMASOS_OLD(pthread_detach);
__attribute__((visibility("hidden"))) int __wrap_pthread_detach(pthread_t t) { return old_pthread_detach(t); }
int old_pthread_once(pthread_once_t*, void (*)(void));
LLMASOS_OLD(pthread_once);
__attribute__((visibility("hidden"))) int __wrap_pthread_once(pthread_once_t* o, void (*fn)(void)) {
  return old_pthread_once(o, fn);
}
int old_pthread_key_create(pthread_key_t*, void (*)(void*));
LLMASOS_OLD(pthread_key_create);
__attribute__((visibility("hidden"))) int __wrap_pthread_key_create(pthread_key_t* k, void (*d)(void*)) {
  return old_pthread_key_create(k, d);
}
// libstdc++ takes this one's address to ask whether threads are linked in.
int old___pthread_key_create(pthread_key_t*, void (*)(void*));
LLMASOS_OLD(__pthread_key_create);
__attribute__((visibility("hidden"))) int __wrap___pthread_key_create(pthread_key_t* k, void (*d)(void*)) {
  return old___pthread_key_create(k, d);
}
int old_pthread_key_delete(pthread_key_t);
LLMASOS_OLD(pthread_key_delete);
__attribute__((visibility("hidden"))) int __wrap_pthread_key_delete(pthread_key_t k) { return old_pthread_key_delete(k); }
void* old_pthread_getspecific(pthread_key_t);
LLMASOS_OLD(pthread_getspecific);
__attribute__((visibility("hidden"))) void* __wrap_pthread_getspecific(pthread_key_t k) {
  return old_pthread_getspecific(k);
}
int old_pthread_setspecific(pthread_key_t, const void*);
LLMASOS_OLD(pthread_setspecific);
__attribute__((visibility("hidden"))) int __wrap_pthread_setspecific(pthread_key_t k, const void* v) {
  return old_pthread_setspecific(k, v);
}

int old_pthread_mutex_trylock(pthread_mutex_t*);
LLMASOS_OLD(pthread_mutex_trylock);
__attribute__((visibility("hidden"))) int __wrap_pthread_mutex_trylock(pthread_mutex_t* m) {
  return old_pthread_mutex_trylock(m);
}

// std::shared_mutex.
#define LLMASOS_RWLOCK(op)                                                                  \
  int old_pthread_rwlock_##op(pthread_rwlock_t*);                                           \
  LLMASOS_OLD(pthread_rwlock_##op);                                                         \
  __attribute__((visibility("hidden"))) int __wrap_pthread_rwlock_##op(pthread_rwlock_t* l) { \
    return old_pthread_rwlock_##op(l);                                                      \
  }
LLMASOS_RWLOCK(rdlock)
LLMASOS_RWLOCK(wrlock)
LLMASOS_RWLOCK(unlock)
LLMASOS_RWLOCK(tryrdlock)
LLMASOS_RWLOCK(trywrlock)
LLMASOS_RWLOCK(destroy)
int old_pthread_rwlock_init(pthread_rwlock_t*, const pthread_rwlockattr_t*);
LLMASOS_OLD(pthread_rwlock_init);
__attribute__((visibility("hidden"))) int __wrap_pthread_rwlock_init(pthread_rwlock_t* l,
                                                                     const pthread_rwlockattr_t* a) {
  return old_pthread_rwlock_init(l, a);
}

}  // extern "C"
