// Time budgets. A count hook costs the VM a function call on every instruction once it is set
// (plain loops ran 2.2 times slower with one), so a main thread runs without any: a watchdog
// thread looks at every state's deadline every few milliseconds and, once it has passed,
// signals the thread running the call, whose handler sets the hook there (lua_sethook is safe
// to call asynchronously, as lua.c does from its SIGINT handler). Coroutines, whose running
// thread the watchdog cannot know, keep a count hook of their own, and none may be created,
// resumed or closed once the deadline has passed, so nesting them buys no time.
#include "internal.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/// The coarse monotonic clock: a few nanoseconds to read instead of tens, at the kernel
/// tick's resolution (1-4 ms), plenty for budgets of tens of milliseconds and up.
static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/// How many VM instructions a coroutine runs between two deadline checks.
#define SB_HOOK_COUNT 1000

/// True when the call in progress must end: past its deadline, or interrupted.
static int over_budget(const sb_context *context) {
    if (atomic_load_explicit(&context->interrupted, memory_order_relaxed)) return 1;
    uint64_t deadline = atomic_load_explicit(&context->deadline, memory_order_relaxed);
    return deadline != 0 && monotonic_ns() >= deadline;
}

static void budget_hook(lua_State *L, lua_Debug *ar);

/// Raises the budget's error in L (never returns), with the main thread's hook armed (this
/// is the thread running the call), so that a pcall there cannot swallow the error either.
static int raise_budget_error(lua_State *L, sb_context *context) {
    context->timed_out = 1;
    atomic_store_explicit(&context->armed, 1, memory_order_relaxed);
    lua_sethook(context->main, budget_hook, LUA_MASKCOUNT, 1);
    if (atomic_load_explicit(&context->interrupted, memory_order_relaxed))
        return luaL_error(L, "interrupted: the subscriber is shutting down");
    return luaL_error(L, "timeout: the call ran past its %d ms budget", (int)(context->limits.timeout_ns / 1000000));
}

/// The budget hook. Past the deadline (or once interrupted) it re-arms itself to run on every
/// instruction and raises each time, so a pcall in the script cannot swallow the error: the
/// next instruction after the pcall raises again. A stale arming of a main thread (its call
/// ended in time) removes itself.
static void budget_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sb_context *context = sb_context_of(L);
    if (!over_budget(context)) {
        if (L == context->main) {
            lua_sethook(L, NULL, 0, 0);
            atomic_store_explicit(&context->armed, 0, memory_order_relaxed);
        } else if (lua_gethookcount(L) != SB_HOOK_COUNT) {
            sb_watch_coroutine(L);  // armed by an earlier call's overrun: back to the usual pace
        }
        return;
    }
    if (L != context->main) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    raise_budget_error(L, context);
}

void sb_watch_coroutine(lua_State *co) { lua_sethook(co, budget_hook, LUA_MASKCOUNT, SB_HOOK_COUNT); }

int sb_over_budget(lua_State *L) { return over_budget(sb_context_of(L)); }

int sb_stopped_by_budget(lua_State *co) {
    int status = lua_status(co);
    return status != LUA_OK && status != LUA_YIELD && lua_gethook(co) == budget_hook && lua_gethookcount(co) == 1;
}

void sb_check_budget(lua_State *L) {
    sb_context *context = sb_context_of(L);
    if (over_budget(context)) raise_budget_error(L, context);
}

/// The context of the call in progress on this thread, for the signal handler.
static __thread sb_context *calling;

/// SIGURG from the watchdog: arms the budget hook of this thread's call, on this thread (lua_sethook
/// walks the running thread's call frames, which only that thread may do, as lua.c does on SIGINT).
static void on_budget_signal(int number) {
    (void)number;
    sb_context *context = calling;
    if (context) lua_sethook(context->main, budget_hook, LUA_MASKCOUNT, 1);
}

/// The watchdog: every state, checked every SB_WATCH_PERIOD_NS.
#define SB_WATCH_PERIOD_NS 5000000
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static sb_context *watched;
static pthread_once_t watchdog_started = PTHREAD_ONCE_INIT;

/// Aborts on a failed pthread call: budgets could not be enforced (as NIOLock's precondition).
static void check(int code, const char *what) {
    if (code == 0) return;
    fprintf(stderr, "switchboard: %s failed: %s\n", what, strerror(code));
    abort();
}

static void *watchdog(void *unused) {
    (void)unused;
    for (;;) {
        struct timespec pause = {0, SB_WATCH_PERIOD_NS};
        nanosleep(&pause, NULL);
        uint64_t now = monotonic_ns();
        check(pthread_mutex_lock(&watch_lock), "pthread_mutex_lock");
        for (sb_context *context = watched; context; context = context->watched_next) {
            uint64_t deadline = atomic_load_explicit(&context->deadline, memory_order_acquire);
            int over = now >= deadline || atomic_load_explicit(&context->interrupted, memory_order_relaxed);
            if (deadline != 0 && over && !atomic_exchange_explicit(&context->armed, 1, memory_order_relaxed))
                pthread_kill(context->thread, SIGURG);
        }
        check(pthread_mutex_unlock(&watch_lock), "pthread_mutex_unlock");
    }
    return NULL;
}

static void start_watchdog(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_budget_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGURG, &action, NULL) != 0) check(errno, "sigaction");
    pthread_t thread;
    pthread_attr_t attributes;
    check(pthread_attr_init(&attributes), "pthread_attr_init");
    check(pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED), "pthread_attr_setdetachstate");
    check(pthread_attr_setstacksize(&attributes, 64 * 1024), "pthread_attr_setstacksize");
    check(pthread_create(&thread, &attributes, watchdog, NULL), "starting the Lua watchdog thread");
    check(pthread_attr_destroy(&attributes), "pthread_attr_destroy");
}

void sb_budget_watch(sb_context *context) {
    check(pthread_once(&watchdog_started, start_watchdog), "pthread_once");
    check(pthread_mutex_lock(&watch_lock), "pthread_mutex_lock");
    context->watched_next = watched;
    context->watched_previous = NULL;
    if (watched) watched->watched_previous = context;
    watched = context;
    check(pthread_mutex_unlock(&watch_lock), "pthread_mutex_unlock");
}

void sb_budget_unwatch(sb_context *context) {
    check(pthread_mutex_lock(&watch_lock), "pthread_mutex_lock");
    if (context->watched_previous) context->watched_previous->watched_next = context->watched_next;
    else watched = context->watched_next;
    if (context->watched_next) context->watched_next->watched_previous = context->watched_previous;
    check(pthread_mutex_unlock(&watch_lock), "pthread_mutex_unlock");
}

void sb_interrupt(lua_State *L) {
    atomic_store(&sb_context_of(L)->interrupted, 1);  // the watchdog signals a call in progress
}

void sb_clear_interrupt(lua_State *L) { atomic_store(&sb_context_of(L)->interrupted, 0); }

void sb_budget_begin(sb_context *context) {
    context->timed_out = 0;
    // An arming of an earlier call that came too late to matter must not keep the watchdog
    // from arming this one; a stale hook it left removes itself.
    atomic_store_explicit(&context->armed, 0, memory_order_relaxed);
    context->thread = pthread_self();
    calling = context;
    static __thread int listening;  // threads made from pool threads inherit a mask that blocks signals
    if (!listening) {
        sigset_t urgent;
        sigemptyset(&urgent);
        sigaddset(&urgent, SIGURG);
        check(pthread_sigmask(SIG_UNBLOCK, &urgent, NULL), "pthread_sigmask");
        listening = 1;
    }
    // Without a budget the watchdog still needs a deadline to see the call (for an interrupt).
    uint64_t budget = context->limits.timeout_ns ? context->limits.timeout_ns : UINT64_MAX / 2;
    atomic_store_explicit(&context->deadline, monotonic_ns() + budget, memory_order_release);
    if (atomic_load_explicit(&context->interrupted, memory_order_relaxed))
        lua_sethook(context->main, budget_hook, LUA_MASKCOUNT, 1);
}

void sb_budget_end(sb_context *context) {
    atomic_store_explicit(&context->deadline, 0, memory_order_relaxed);
    calling = NULL;
    if (context->timed_out || atomic_load_explicit(&context->armed, memory_order_relaxed)) {
        lua_sethook(context->main, NULL, 0, 0);  // hook-free again until the next overrun
        atomic_store_explicit(&context->armed, 0, memory_order_relaxed);
    }
}
