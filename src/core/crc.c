/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slice-by-8 tables built once;
 * on x86-64 with SSE4.2 (checked at run time) the crc32 instruction computes the same
 * CRC. Used for model files, checkpoints and wire messages (every simulated update). */
#include <pthread.h>

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define FR_HAVE_CRC_HW 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* little-endian load, as the table path's byte order */
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--) c = _mm_crc32_u8(c, *p++);
    return c;
}
static int g_hw = -1;
#else
#define FR_HAVE_CRC_HW 0
#endif

static uint32_t g_tab[8][256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        g_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) g_tab[t][i] = (g_tab[t - 1][i] >> 8) ^ g_tab[0][g_tab[t - 1][i] & 0xff];
#if FR_HAVE_CRC_HW
    g_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

/* The table path. */
static uint32_t crc_sw(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ fri_get_u32(p), hi = fri_get_u32(p + 4);
        c = g_tab[7][lo & 0xff] ^ g_tab[6][(lo >> 8) & 0xff] ^ g_tab[5][(lo >> 16) & 0xff] ^
            g_tab[4][lo >> 24] ^ g_tab[3][hi & 0xff] ^ g_tab[2][(hi >> 8) & 0xff] ^
            g_tab[1][(hi >> 16) & 0xff] ^ g_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ g_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

uint32_t fr_crc32c(uint32_t crc, const void *data, size_t n) {
    pthread_once(&g_once, build_tables);
#if FR_HAVE_CRC_HW
    if (g_hw == 1) return ~crc_hw(~crc, data, n);
#endif
    return crc_sw(crc, data, n);
}
