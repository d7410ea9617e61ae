/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every stored
 * record and block. The API follows LevelDB's crc32c::Extend so stored checksums can be
 * compared with other implementations of the same scheme.
 */
#ifndef AGGSTORE_CRC32C_H
#define AGGSTORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Lets Swift see `data` as an optional pointer, so an empty buffer's nil base address needs no special case. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnullability-extension"
#define AGGSTORE_CRC32C_NULLABLE _Nullable
#else
#define AGGSTORE_CRC32C_NULLABLE
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Returns the CRC32C of `data` appended to a message whose CRC32C is `crc`; pass 0 to start.
 * The pre- and post-inversion happen inside, so extend(extend(0, a), b) == extend(0, a || b).
 * Uses the CPU's CRC32C instruction when there is one. `data` may be NULL when `length` is 0.
 */
uint32_t aggstore_crc32c_extend(uint32_t crc, const void *AGGSTORE_CRC32C_NULLABLE data, size_t length);

/*
 * The same result as aggstore_crc32c_extend, always by the table-driven slicing-by-8 method;
 * exposed so tests can check the hardware path against it.
 */
uint32_t aggstore_crc32c_extend_portable(uint32_t crc, const void *AGGSTORE_CRC32C_NULLABLE data, size_t length);

/* Returns 1 when aggstore_crc32c_extend uses a CPU instruction, 0 when it falls back to tables. */
int aggstore_crc32c_is_hardware_accelerated(void);

#ifdef __cplusplus
}
#endif

#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#endif /* AGGSTORE_CRC32C_H */
