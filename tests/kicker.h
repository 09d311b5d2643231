/* A thread that sends a signal to another as fast as it can, so that the signal's
 * handler runs between any two instructions of the target's code: for tests of
 * what must stay exact under signal handlers. Not instrumented when the test is
 * built with -finstrument-functions: a first call of these would take the hooks'
 * slow path, during which the handler's own calls are not recorded. */
#ifndef TESTS_KICKER_H
#define TESTS_KICKER_H

#include <check.h>
#include <pthread.h>
#include <signal.h>

#define TEST_KICKER_FN static inline __attribute__((no_instrument_function))

struct test_kicker {
    pthread_t target, thread;
    int sig;
    unsigned long max;      /* signals to send at most; 0: until stopped */
    int on;
};

TEST_KICKER_FN void *
test_kicker_main(void *arg)
{
    struct test_kicker *k = arg;

    for (unsigned long n = 0; (!k->max || n < k->max) &&
                              __atomic_load_n(&k->on, __ATOMIC_ACQUIRE);
         n++)
        pthread_kill(k->target, k->sig);
    return NULL;
}

/* Start sending @sig (its handler installed) to the calling thread, at most @max
 * times (0: until test_kicker_stop()). */
TEST_KICKER_FN void
test_kicker_start(struct test_kicker *k, int sig, unsigned long max)
{
    k->target = pthread_self();
    k->sig = sig;
    k->max = max;
    __atomic_store_n(&k->on, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_create(&k->thread, NULL, test_kicker_main, k), 0);
}

/* Stop sending, then block the signal on the calling thread and check that none is
 * pending: every signal sent was handled (delivered on the join's way back). */
TEST_KICKER_FN void
test_kicker_stop(struct test_kicker *k)
{
    sigset_t block, pending;

    __atomic_store_n(&k->on, 0, __ATOMIC_RELEASE);
    pthread_join(k->thread, NULL);
    sigemptyset(&block);
    sigaddset(&block, k->sig);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    sigpending(&pending);
    ck_assert(!sigismember(&pending, k->sig));
}

/* Unblock the signal test_kicker_stop() blocked, and restore its default action. */
TEST_KICKER_FN void
test_kicker_done(struct test_kicker *k)
{
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, k->sig);
    pthread_sigmask(SIG_UNBLOCK, &block, NULL);
    signal(k->sig, SIG_DFL);
}

#endif
