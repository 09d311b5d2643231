/* Every function, timed with no macro: build with -finstrument-functions and link
 * libprobe-instrument, and each function becomes a scope in the report.
 *
 *   cc -O2 -finstrument-functions instrument.c -o instrument \
 *      $(pkg-config --libs probe-instrument) -lpthread
 *   PROBE_OUTPUT=stderr ./instrument
 *
 * Nothing here includes a libprobe header: the report at exit comes from the
 * environment (docs/environment.md). Its call graph is known, so the report can be
 * checked: fib(12) recurses into 465 calls (1 primitive), and a diamond
 * (top -> left, right -> bottom) runs 100 times in main and 50 in a second thread. */
#include <pthread.h>
#include <stdio.h>

static volatile int sink;

static int
bottom(int x)
{
    return x * 3 + sink;
}

static int
left(int x)
{
    return bottom(x) + 1;
}

static int
right(int x)
{
    return bottom(x) * 2;
}

static int
top(int x)
{
    return left(x) + right(x);
}

static int
fib(int n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void *
worker(void *arg)
{
    int sum = 0;

    (void)arg;
    for (int i = 0; i < 50; i++)
        sum += top(i);
    sink = sum;
    return NULL;
}

int
main(void)
{
    pthread_t thread;
    int sum = 0;

    if (pthread_create(&thread, NULL, worker, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    for (int i = 0; i < 100; i++)
        sum += top(i);
    sum += fib(12);
    pthread_join(thread, NULL);
    printf("%d\n", sum);
    return 0;
}
