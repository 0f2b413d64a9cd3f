/*
 * alloc.c - task memory: size classes with per-thread caches and a global
 * transfer pool, so that a spawn and a completion cost no malloc/free in the
 * steady state.
 *
 * Why: tasks are often allocated on one thread (a spawner, the block_on
 * thread) and freed on another (the worker that completes them). glibc's
 * per-thread cache holds 7 blocks per size, so that pattern falls through to
 * the arena locks (measured: ~20% of spawn_many_local in malloc/free and arena
 * lock waits). Here a thread keeps up to 2 * BATCH free blocks per class and
 * moves whole batches of BATCH blocks to and from a global pool under a mutex:
 * one lock per BATCH tasks, and memory flows back from the freeing threads to
 * the allocating ones.
 *
 * Classes: block size = 128 (header) + class * 64, class 1..NCLASSES-1; class
 * 0 means a plain malloc (frames over 896 bytes). The class travels in bits
 * 28..31 of the task's state word (internal.h).
 *
 * Under AddressSanitizer the pool is bypassed so that use-after-free of a
 * task stays detectable.
 *
 * Free blocks are linked through their first word (`next`) and batches
 * through their second (`next_batch`); a batch's first block carries the
 * count in its third word.
 */
#include <stdlib.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SP_NO_POOL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SP_NO_POOL 1
#endif
#endif

#define NCLASSES 15
#define BATCH 32 /* thin air: one lock per 32 spawns is noise */

unsigned sp__alloc_class(size_t frame)
{
	unsigned cls = (unsigned)((frame + 63) / 64);
	if (cls == 0)
		cls = 1;
	return cls < NCLASSES ? cls : 0;
}

#ifdef SP_NO_POOL

void *sp__task_alloc(unsigned cls, size_t frame)
{
	(void)cls;
	return malloc(sizeof(sp__task) + frame);
}

void sp__task_free(void *p, unsigned cls)
{
	(void)cls;
	free(p);
}

#else /* the pool */

struct free_block {
	struct free_block *next;
	struct free_block *next_batch;
	size_t count;
};

struct thread_cache {
	struct free_block *head[NCLASSES];
	uint32_t count[NCLASSES];
};

static struct {
	pthread_mutex_t lock;
	struct free_block *batches[NCLASSES];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local struct thread_cache cache;
static _Thread_local bool cache_registered;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static size_t class_size(unsigned cls)
{
	return sizeof(sp__task) + (size_t)cls * 64;
}

static void pool_push_batch(unsigned cls, struct free_block *first, size_t n)
{
	first->count = n;
	pthread_mutex_lock(&pool.lock);
	first->next_batch = pool.batches[cls];
	pool.batches[cls] = first;
	pthread_mutex_unlock(&pool.lock);
}

/* Thread exit: hand the cache to the pool so nothing is lost or leaked. */
static void cache_flush(void *unused)
{
	(void)unused;
	for (unsigned c = 1; c < NCLASSES; c++) {
		if (cache.head[c])
			pool_push_batch(c, cache.head[c], cache.count[c]);
		cache.head[c] = NULL;
		cache.count[c] = 0;
	}
}

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, cache_flush);
}

static void cache_register(void)
{
	pthread_once(&cache_once, cache_key_init);
	pthread_setspecific(cache_key, &cache); /* any non-NULL value */
	cache_registered = true;
}

/*
 * A new slab: SLAB blocks of one class, cache-line aligned, carved at once.
 * Every block starts on a cache line and no two tasks share one (malloc's
 * 16-byte headers made neighbouring tasks share lines: two workers then
 * fought over lines neither needed, and spawn_many_local_task ran at 1.8M or
 * 5.6M tasks/s depending on where the heap happened to start). Slabs are kept
 * for the life of the process, like any allocator's arenas.
 */
#define SLAB 64
static void *carve_slab(unsigned cls)
{
	size_t bs = class_size(cls);
	char *slab = aligned_alloc(SP__CACHELINE, bs * SLAB);
	if (!slab)
		return NULL;
	for (int i = SLAB - 1; i >= 1; i--) {
		struct free_block *b = (struct free_block *)(slab + (size_t)i * bs);
		b->next = cache.head[cls];
		cache.head[cls] = b;
	}
	cache.count[cls] += SLAB - 1;
	return slab;
}

void *sp__task_alloc(unsigned cls, size_t frame)
{
	if (cls == 0)
		return malloc(sizeof(sp__task) + frame);
	struct free_block *b = cache.head[cls];
	if (SP__LIKELY(b)) {
		cache.head[cls] = b->next;
		cache.count[cls]--;
		/* The next allocation reads that block's link: it was freed on
		 * another thread (the worker that completed its task), so that
		 * read missed the cache on almost every remote spawn (95% of
		 * this function's time in the timer workload). Fetch it now, for
		 * writing: the spawn fills the whole header. NULL is harmless. */
		__builtin_prefetch(b->next, 1, 3);
		return b;
	}
	if (!cache_registered)
		cache_register();
	pthread_mutex_lock(&pool.lock);
	b = pool.batches[cls];
	if (b)
		pool.batches[cls] = b->next_batch;
	pthread_mutex_unlock(&pool.lock);
	if (!b)
		return carve_slab(cls);
	cache.head[cls] = b->next;
	cache.count[cls] = (uint32_t)(b->count - 1);
	return b;
}

void sp__task_free(void *p, unsigned cls)
{
	if (cls == 0) {
		free(p);
		return;
	}
	if (!cache_registered)
		cache_register();
	struct free_block *b = p;
	b->next = cache.head[cls];
	cache.head[cls] = b;
	if (++cache.count[cls] < 2 * BATCH)
		return;
	/* Keep the newest BATCH blocks (warm in this cache), move the rest. */
	struct free_block *keep_last = b;
	for (int i = 1; i < BATCH; i++)
		keep_last = keep_last->next;
	struct free_block *first = keep_last->next;
	keep_last->next = NULL;
	cache.count[cls] = BATCH;
	pool_push_batch(cls, first, BATCH);
}

#endif /* SP_NO_POOL */
