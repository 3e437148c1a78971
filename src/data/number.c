/* Number parsing for the text readers (declared in data/text.h): raw ids, 64-bit
 * integers and decimals, by hand for the usual shapes, with strtod only for unusual
 * decimals ("4e0", long digit runs). Each parser trims spaces, reads only s[0, n) and
 * tells a malformed value (FRI_NUM_BAD) from one out of range (FRI_NUM_RANGE), so the
 * readers can word the two differently. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/text.h"

const double fri_p10[19] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                            1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

int fri_parse_id(const char *s, size_t n, uint32_t *out) {
    fri_text_trim(&s, &n);
    if (n == 0) return FRI_NUM_BAD;
    bool neg = false;
    if (*s == '-' || *s == '+') { neg = *s == '-'; s++; n--; }
    if (n == 0) return FRI_NUM_BAD;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned d = (unsigned char)s[k] - '0';
        if (d > 9) return FRI_NUM_BAD;
        if (v <= FRI_ID_LIMIT) v = v * 10 + d;
    }
    if (neg && v != 0) return FRI_NUM_RANGE;
    if (v > FRI_ID_LIMIT) return FRI_NUM_RANGE;
    *out = (uint32_t)v;
    return FRI_NUM_OK;
}

int fri_parse_i64(const char *s, size_t n, int64_t *out) {
    fri_text_trim(&s, &n);
    if (n == 0) return FRI_NUM_BAD;
    bool neg = false;
    if (*s == '-' || *s == '+') { neg = *s == '-'; s++; n--; }
    if (n == 0) return FRI_NUM_BAD;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned d = (unsigned char)s[k] - '0';
        if (d > 9) return FRI_NUM_BAD;
        if (v > (uint64_t)INT64_MAX / 10 - 1) return FRI_NUM_RANGE;
        v = v * 10 + d;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return FRI_NUM_OK;
}

int fri_parse_real(const char *s, size_t n, double *out) {
    fri_text_trim(&s, &n);
    if (n == 0) return FRI_NUM_BAD;
    const char *p = s, *end = s + n;
    bool neg = false;
    if (*p == '-' || *p == '+') { neg = *p == '-'; p++; }
    uint64_t ip = 0, fp = 0;
    int id = 0, fd = 0;
    while (p < end && (unsigned)(*p - '0') <= 9 && id < 18) { ip = ip * 10 + (unsigned)(*p - '0'); p++; id++; }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') <= 9 && fd < 18) { fp = fp * 10 + (unsigned)(*p - '0'); p++; fd++; }
    }
    if (p == end && id + fd > 0) {
        double v = (double)ip + (fd ? (double)fp / fri_p10[fd] : 0.0);
        *out = neg ? -v : v;
        return FRI_NUM_OK;
    }
    /* Unusual: exponents, very long digit runs. */
    char tmp[64];
    if (n >= sizeof tmp) return FRI_NUM_BAD;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (size_t k = 0; k < n; k++) /* strtod would take "inf", "nan", hex: refuse letters other than e */
        if (!strchr("0123456789+-.eE", tmp[k])) return FRI_NUM_BAD;
    char *e = NULL;
    errno = 0;
    double v = strtod(tmp, &e);
    if (e != tmp + n || e == tmp) return FRI_NUM_BAD;
    if (!isfinite(v)) return FRI_NUM_RANGE;
    *out = v;
    return FRI_NUM_OK;
}

bool fri_text_is_numeric(const char *s, size_t n) {
    fri_text_trim(&s, &n);
    if (n && (*s == '-' || *s == '+')) { s++; n--; }
    return n > 0 && (unsigned)(*s - '0') <= 9;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (civil-from-days
 * inverted: years start in March so the leap day is last). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned mp = m > 2 ? m - 3 : m + 9;
    unsigned doy = (153 * mp + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s as a number; -1 if any is not a digit. */
static int digits(const char *s, int n) {
    int v = 0;
    for (int k = 0; k < n; k++) {
        if ((unsigned)(s[k] - '0') > 9) return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

int fri_parse_datetime(const char *s, size_t n, int64_t *out) {
    fri_text_trim(&s, &n);
    if (n < 10 || (s[4] != '-' && s[4] != '/') || s[7] != s[4]) return FRI_NUM_BAD;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return FRI_NUM_BAD;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return FRI_NUM_BAD;
    int hh = 0, mm = 0, ss = 0;
    size_t p = 10;
    if (p < n && (s[p] == 'T' || s[p] == ' ')) {
        if (n < p + 6 || s[p + 3] != ':') return FRI_NUM_BAD;
        hh = digits(s + p + 1, 2);
        mm = digits(s + p + 4, 2);
        p += 6;
        if (p < n && s[p] == ':') {
            if (n < p + 3) return FRI_NUM_BAD;
            ss = digits(s + p + 1, 2);
            p += 3;
            if (p < n && s[p] == '.') {
                p++;
                size_t q = p;
                while (p < n && (unsigned)(s[p] - '0') <= 9) p++;
                if (p == q) return FRI_NUM_BAD;
            }
        }
        if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60) return FRI_NUM_BAD;
    }
    int64_t off = 0; /* a UTC offset after a time: +HH:MM or +HHMM (pandas writes +00:00) */
    if (p < n && s[p] == 'Z') p++;
    else if (p > 10 && p < n && (s[p] == '+' || s[p] == '-')) {
        int sign = s[p] == '-' ? -1 : 1;
        size_t q = p + 1;
        int oh = n >= q + 2 ? digits(s + q, 2) : -1, om;
        q += 2;
        if (q < n && s[q] == ':') q++;
        om = n >= q + 2 ? digits(s + q, 2) : -1;
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return FRI_NUM_BAD;
        off = sign * (oh * 3600 + om * 60);
        p = q + 2;
    }
    if (p != n) return FRI_NUM_BAD;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss - off;
    return FRI_NUM_OK;
}
