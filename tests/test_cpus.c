/* fr_cpu_count: the CPUs this process may use (affinity mask, cgroup quota). */
#define _GNU_SOURCE /* sched_setaffinity */
#include <criterion/criterion.h>
#include <sched.h>
#include <unistd.h>

#include "core/core.h"
#include "fedrec/core.h"

Test(cpus, quota_text) {
    cr_assert_eq(fri_cgroup_cpus("max 100000\n", NULL, NULL), 0.0);
    cr_assert_eq(fri_cgroup_cpus("150000 100000\n", NULL, NULL), 1.5);
    cr_assert_eq(fri_cgroup_cpus("50000 100000", NULL, NULL), 0.5);
    cr_assert_eq(fri_cgroup_cpus("garbage", NULL, NULL), 0.0);
    cr_assert_eq(fri_cgroup_cpus("", NULL, NULL), 0.0);
    cr_assert_eq(fri_cgroup_cpus(NULL, "-1\n", "100000\n"), 0.0);
    cr_assert_eq(fri_cgroup_cpus(NULL, "200000\n", "100000\n"), 2.0);
    cr_assert_eq(fri_cgroup_cpus(NULL, "200000", "0"), 0.0);
    cr_assert_eq(fri_cgroup_cpus(NULL, NULL, NULL), 0.0);
}

/* Narrowing the affinity mask to one CPU (as `taskset -c N` does) gives 1, and a pool of
 * "one per CPU" one worker; the mask restored, the count is back. */
Test(cpus, follows_the_affinity_mask) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int before = fr_cpu_count();
    cr_assert(before >= 1 && before <= online, "%d of %ld online", before, online);
    cpu_set_t old, one;
    cr_assert_eq(sched_getaffinity(0, sizeof old, &old), 0);
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &old)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    int narrowed = fr_cpu_count();
    fr_pool *p = NULL;
    fr_err e = fr_pool_create(&p, 0);
    int size = e ? -1 : fr_pool_size(p);
    fr_pool_free(p);
    cr_assert_eq(sched_setaffinity(0, sizeof old, &old), 0);
    cr_assert_eq(narrowed, 1);
    cr_assert_eq(size, 1);
    cr_assert_eq(fr_cpu_count(), before);
}
