/*
 * Runs the cloudauth C tests against the stand-in (run them with tests/run/c.sh).
 *
 *   cloudauth_ctests            every test
 *   cloudauth_ctests WORD...    only the tests whose name contains one of the words
 *
 * Prints one line per test and a final "N passed, M failed"; exits 1 if any test failed.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern unsigned long t_checks_passed, t_checks_failed;

static int selected(const char *name, int argc, char **argv)
{
    int i;
    if (argc < 2)
        return 1;
    for (i = 1; i < argc; i++)
        if (strstr(name, argv[i]) != NULL)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const struct test_case *suites[] = {api_tests,       token_tests,  request_tests, async_tests,
                                        queue_tests,     driven_tests, lifecycle_tests, shared_tests,
                                        env_tests,       fork_tests,   stream_tests,  upload_tests};
    unsigned passed = 0, failed = 0;
    unsigned long checks_before;
    size_t i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("STANDIN_URL") == NULL || standin_port() == 0) {
        fprintf(stderr, "STANDIN_URL and STANDIN_PORT are not set: run this under "
                        "tests/standin/with_server.sh (tests/run/c.sh does)\n");
        return 2;
    }
    printf("cloudauth %s, stand-in at %s, time factor %ld\n", cloudauth_version(),
           getenv("STANDIN_URL"), time_factor());

    for (i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        const struct test_case *t;
        for (t = suites[i]; t->name != NULL; t++) {
            unsigned long failures_before = t_checks_failed;
            if (!selected(t->name, argc, argv))
                continue;
            checks_before = t_checks_passed + t_checks_failed;
            printf("[ RUN  ] %s\n", t->name);
            ctl_reset();
            t->fn();
            if (t_checks_failed == failures_before) {
                passed++;
                printf("[  OK  ] %s (%lu checks)\n", t->name,
                       t_checks_passed + t_checks_failed - checks_before);
            } else {
                failed++;
                printf("[ FAIL ] %s\n", t->name);
            }
        }
    }
    printf("%u passed, %u failed (%lu checks passed, %lu failed)\n", passed, failed,
           t_checks_passed, t_checks_failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
