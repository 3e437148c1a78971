/* The CPUs this process may use (see fr_cpu_count in include/fedrec/core.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

double fri_cgroup_cpus(const char *v2_cpu_max, const char *v1_quota, const char *v1_period) {
    double quota = -1, period = 0;
    if (v2_cpu_max) { /* "max 100000" (no limit) or "QUOTA PERIOD" */
        char q[32];
        if (sscanf(v2_cpu_max, "%31s %lf", q, &period) == 2 && strcmp(q, "max")) quota = strtod(q, NULL);
    } else if (v1_quota && v1_period) { /* cpu.cfs_quota_us is -1 without a limit */
        quota = strtod(v1_quota, NULL);
        period = strtod(v1_period, NULL);
    }
    if (!(quota > 0) || !(period > 0) || !isfinite(quota / period)) return 0;
    return quota / period;
}

/* The first line of path into buf (NUL-terminated), or NULL. */
static const char *first_line(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    const char *r = fgets(buf, (int)n, f);
    fclose(f);
    return r;
}

int fr_cpu_count(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = online > 0 ? (int)(online > 1024 ? 1024 : online) : 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int a = CPU_COUNT(&set);
        if (a >= 1 && a < n) n = a;
    }
    char v2[128], q[64], p[64];
    const char *m = first_line("/sys/fs/cgroup/cpu.max", v2, sizeof v2);
    double c = m ? fri_cgroup_cpus(m, NULL, NULL)
                 : fri_cgroup_cpus(NULL, first_line("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", q, sizeof q),
                                   first_line("/sys/fs/cgroup/cpu/cpu.cfs_period_us", p, sizeof p));
    if (c > 0) {
        double up = ceil(c);
        if (up < (double)n) n = up < 1 ? 1 : (int)up;
    }
    return n;
}
