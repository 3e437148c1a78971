/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slice-by-8 tables built once;
 * on x86-64 with SSE4.2 (checked at run time) the crc32 instruction computes the same
 * CRC. Used for model files, checkpoints and wire messages (every simulated update).
 * The instruction has a latency of 3 cycles and a throughput of 1, so long buffers run
 * three streams over three equal blocks at once and join their CRCs with
 * crc(A B) = crc(A) x^(8|B|) + crc(B) (mod P, over GF(2)), the constants for the block
 * size computed once. */
#include <pthread.h>

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define FR_HAVE_CRC_HW 1
#define CRC_BLOCK 4096 /* bytes per stream in the three-way loop */
static uint32_t g_x8b, g_x16b; /* x^(8 CRC_BLOCK), x^(16 CRC_BLOCK) mod P */
static uint32_t mulmod(uint32_t a, uint32_t b);

/* One stream over n bytes (register c: not inverted). */
__attribute__((target("sse4.2"))) static uint32_t crc_hw1(uint32_t c, const uint8_t *p, size_t n) {
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

/* Three streams over blocks of CRC_BLOCK bytes, then one over the tail. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    while (n >= 3 * CRC_BLOCK) {
        uint64_t a = c, b = 0xffffffffu, d = 0xffffffffu;
        const uint8_t *q = p + CRC_BLOCK, *r = p + 2 * CRC_BLOCK;
        for (size_t i = 0; i < CRC_BLOCK; i += 8) {
            uint64_t va, vb, vd;
            memcpy(&va, p + i, 8);
            memcpy(&vb, q + i, 8);
            memcpy(&vd, r + i, 8);
            a = _mm_crc32_u64(a, va);
            b = _mm_crc32_u64(b, vb);
            d = _mm_crc32_u64(d, vd);
        }
        /* join the finished CRCs (the inversions cancel in the identity), back to a register */
        uint32_t f = mulmod(~(uint32_t)a, g_x16b) ^ mulmod(~(uint32_t)b, g_x8b) ^ ~(uint32_t)d;
        c = ~f;
        p += 3 * CRC_BLOCK;
        n -= 3 * CRC_BLOCK;
    }
    return crc_hw1(c, p, n);
}
static int g_hw = -1;
#else
#define FR_HAVE_CRC_HW 0
#endif

static uint32_t g_tab[8][256];

/* a * b mod P in the reflected representation (bit 31 is x^0). */
static uint32_t mulmod(uint32_t a, uint32_t b) {
    uint32_t m = 1u << 31, r = 0;
    while (a) {
        if (a & m) {
            r ^= b;
            a ^= m;
        }
        m >>= 1;
        b = (b >> 1) ^ (0x82F63B78u & (0u - (b & 1u)));
    }
    return r;
}

/* x^n mod P, by squaring. */
static uint32_t xpow(uint64_t n) {
    uint32_t r = 1u << 31, sq = 1u << 30; /* x^0, x^1 */
    while (n) {
        if (n & 1) r = mulmod(r, sq);
        sq = mulmod(sq, sq);
        n >>= 1;
    }
    return r;
}
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
    g_x8b = xpow(8 * (uint64_t)CRC_BLOCK);
    g_x16b = xpow(16 * (uint64_t)CRC_BLOCK);
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

uint32_t fri_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
    pthread_once(&g_once, build_tables);
    /* crc(A B) = crc(A) x^(8|B|) + crc(B) (mod P): the inversions of init and final cancel */
    return mulmod(crc_a, xpow(8 * len_b)) ^ crc_b;
}
