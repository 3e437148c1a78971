/* Pair sets (fedrec/pairset.h): no pair added is ever missed, a pair not added is found
 * about as often as the filter's false-positive rate says, the text form reads back to
 * the same answers and refuses damaged text, and the provenance of a model keeps its
 * training pairs. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/fedrec.h"
#include "testutil.h"

/* users 0..nu-1 (raw ids 1000 + u), each with items (u * 7 + j) % ni, raw ids 5 * i. */
static fr_dataset *grid(uint32_t nu, uint32_t per_user, uint32_t ni) {
    size_t n = (size_t)nu * per_user;
    int64_t *us = malloc(n * sizeof *us), *is = malloc(n * sizeof *is);
    cr_assert(us && is);
    for (uint32_t u = 0; u < nu; u++)
        for (uint32_t j = 0; j < per_user; j++) {
            us[(size_t)u * per_user + j] = 1000 + u;
            is[(size_t)u * per_user + j] = 5 * (int64_t)((u * 7u + j) % ni);
        }
    fr_dataset *d = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&d, n, us, is, NULL, NULL), FR_OK, "%s", fr_errmsg());
    free(us);
    free(is);
    return d;
}

Test(pairset, no_false_negatives_and_about_one_percent_false_positives) {
    fr_dataset *d = grid(500, 40, 2000); /* 20,000 pairs */
    fr_pairset *s = NULL;
    cr_assert_eq(fr_pairset_build(&s, d, 0), FR_OK);
    cr_assert_eq(fr_pairset_count(s), 20000);
    for (uint32_t u = 0; u < 500; u++)
        for (uint32_t j = 0; j < 40; j++)
            cr_assert(fr_pairset_has(s, 1000 + u, 5 * (int64_t)((u * 7u + j) % 2000)), "pair (%u, %u) missed", u, j);
    uint64_t fp = 0, tries = 200000;
    for (uint64_t t = 0; t < tries; t++) fp += fr_pairset_has(s, 1000 + (int64_t)(t % 500), 5 * (int64_t)(t % 7919) + 1);
    double rate = (double)fp / (double)tries;
    cr_assert(rate < 0.02, "false positives %.4f, expected about 1%%", rate);
    cr_assert(fr_pairset_fp_rate(s) > 0.002 && fr_pairset_fp_rate(s) < 0.02, "fp rate %g", fr_pairset_fp_rate(s));
    cr_assert(rate < 2 * fr_pairset_fp_rate(s) + 0.002, "measured %g, stated %g", rate, fr_pairset_fp_rate(s));
    fr_pairset_free(s);
    fr_dataset_free(d);
}

Test(pairset, a_size_cap_raises_false_positives_but_misses_nothing) {
    fr_dataset *d = grid(500, 40, 2000);
    fr_pairset *s = NULL;
    cr_assert_eq(fr_pairset_build(&s, d, 4096), FR_OK); /* 32768 bits for 20,000 pairs */
    for (uint32_t u = 0; u < 500; u++)
        for (uint32_t j = 0; j < 40; j++) cr_assert(fr_pairset_has(s, 1000 + u, 5 * (int64_t)((u * 7u + j) % 2000)));
    cr_assert(fr_pairset_fp_rate(s) > 0.2, "a filter of 1.6 bits a pair cannot be at 1%%: %g", fr_pairset_fp_rate(s));
    char *text = NULL;
    cr_assert_eq(fr_pairset_encode(s, &text), FR_OK);
    cr_assert(strlen(text) < 4096 * 4 / 3 + 64, "the cap bounds the text: %zu", strlen(text));
    fr_pairset_text_free(text);
    fr_pairset_free(s);
    fr_dataset_free(d);
}

Test(pairset, text_round_trip) {
    fr_dataset *d = grid(37, 5, 101);
    fr_pairset *s = NULL, *t = NULL;
    cr_assert_eq(fr_pairset_build(&s, d, 0), FR_OK);
    char *text = NULL, *again = NULL;
    cr_assert_eq(fr_pairset_encode(s, &text), FR_OK);
    cr_assert_eq(strncmp(text, "bloom1:", 7), 0, "%s", text);
    cr_assert_eq(fr_pairset_decode(&t, text), FR_OK, "%s", fr_errmsg());
    cr_assert_eq(fr_pairset_count(t), fr_pairset_count(s));
    cr_assert_float_eq(fr_pairset_fp_rate(t), fr_pairset_fp_rate(s), 1e-12);
    for (int64_t u = 990; u < 1050; u++)
        for (int64_t i = 0; i < 520; i++) cr_assert_eq(fr_pairset_has(t, u, i), fr_pairset_has(s, u, i));
    cr_assert_eq(fr_pairset_encode(t, &again), FR_OK);
    cr_assert_str_eq(again, text);
    fr_pairset_text_free(again);
    fr_pairset_free(t);
    /* damaged text is refused, naming what is wrong */
    const char *bad[] = {"", "bloom2:1:64:0:AAAAAAAAAAA=", "bloom1:0:64:0:AAAAAAAAAAA=", "bloom1:1:65:0:AAAAAAAAAAA=",
                         "bloom1:1:64:0:AAAAAAAAAA=", "bloom1:1:64:0:AAAAAAAAAAAA", "bloom1:1:64:0:AAAAAAA*AAA=",
                         "bloom1:1:64:0:AAAAAAAAAA==", "bloom1:17:64:0:AAAAAAAAAAA=", "bloom1:1:64:x:AAAAAAAAAAA="};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        t = (fr_pairset *)1;
        cr_assert_eq(fr_pairset_decode(&t, bad[k]), FR_ERR_PARSE, "'%s' was accepted", bad[k]);
        cr_assert_null(t);
        cr_assert(strstr(fr_errmsg(), "pair set: "), "%s", fr_errmsg());
    }
    cr_assert_eq(fr_pairset_decode(&t, "bloom1:1:64:0:AAAAAAAAAAA="), FR_OK, "%s", fr_errmsg());
    cr_assert_not(fr_pairset_has(t, 1, 2));
    cr_assert_float_eq(fr_pairset_fp_rate(t), 0.0, 1e-12);
    fr_pairset_free(t);
    fr_pairset_text_free(text);
    fr_pairset_free(s);
    fr_dataset_free(d);
}

Test(pairset, overlap_is_clear_only_for_a_test_set_that_was_trained_on) {
    fr_dataset *d = grid(300, 20, 1000);
    fr_pairset *s = NULL;
    cr_assert_eq(fr_pairset_build(&s, d, 0), FR_OK);
    fr_pairset_overlap ov;
    fr_pairset_overlap_of(s, d, &ov);
    cr_assert_eq(ov.total, 6000);
    cr_assert_eq(ov.found, 6000);
    cr_assert(ov.clear);
    /* a disjoint test set: other items of the same users */
    size_t n = 300 * 3;
    int64_t us[900], is[900];
    for (size_t k = 0; k < n; k++) { us[k] = 1000 + (int64_t)(k % 300); is[k] = 5 * (int64_t)(k % 1000) + 3; }
    fr_dataset *t = NULL;
    cr_assert_eq(fr_dataset_from_arrays(&t, n, us, is, NULL, NULL), FR_OK);
    fr_pairset_overlap_of(s, t, &ov);
    cr_assert_eq(ov.total, n);
    cr_assert_not(ov.clear, "a disjoint set found %llu of %zu", (unsigned long long)ov.found, n);
    /* half of it trained on */
    for (size_t k = 0; k < n / 2; k++) is[k] = 5 * (int64_t)(((k % 300) * 7u + k / 300) % 1000);
    fr_dataset_free(t);
    cr_assert_eq(fr_dataset_from_arrays(&t, n, us, is, NULL, NULL), FR_OK);
    fr_pairset_overlap_of(s, t, &ov);
    cr_assert(ov.share >= 0.5 && ov.clear, "share %g", ov.share);
    fr_dataset_free(t);
    fr_pairset_free(s);
    fr_dataset_free(d);
}

Test(pairset, provenance_records_the_training_pairs) {
    fr_source src;
    fr_source_default(&src); /* the built-in synthetic set */
    fr_data *data = NULL;
    cr_assert_eq(fr_data_load(&data, &src), FR_OK, "%s", fr_errmsg());
    fr_provenance p, q;
    fr_provenance_init(&p);
    fr_provenance_init(&q);
    cr_assert_eq(fr_provenance_set_data(&p, &src, data), FR_OK);
    cr_assert_not_null(p.train_pairs);
    char *json = NULL;
    cr_assert_eq(fr_provenance_encode(&p, &json), FR_OK);
    cr_assert(strlen(json) < (1u << 20), "the provenance fits a model file: %zu bytes", strlen(json));
    cr_assert_eq(fr_provenance_decode(&q, json), FR_OK, "%s", fr_errmsg());
    cr_assert_str_eq(q.train_pairs, p.train_pairs);
    fr_pairset *s = NULL;
    cr_assert_eq(fr_pairset_decode(&s, q.train_pairs), FR_OK, "%s", fr_errmsg());
    fr_pairset_overlap ov;
    fr_pairset_overlap_of(s, fr_data_train(data), &ov);
    cr_assert(ov.clear && ov.found == ov.total);
    fr_pairset_overlap_of(s, fr_data_test(data), &ov);
    cr_assert_not(ov.clear, "the held-out test set: %llu of %llu found", (unsigned long long)ov.found,
                  (unsigned long long)ov.total);
    fr_pairset_free(s);
    fr_provenance_json_free(json);
    /* a file from before: no pairs, nothing else changes */
    fr_provenance_destroy(&q);
    cr_assert_eq(fr_provenance_decode(&q, "{\"mode\":\"federated\",\"data\":null}"), FR_OK);
    cr_assert_null(q.train_pairs);
    fr_provenance_destroy(&q);
    fr_provenance_destroy(&p);
    fr_data_free(data);
}
