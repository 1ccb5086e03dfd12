/*
 * fuzz_common.h — what every fuzz harness in tests/fuzz shares: reading
 * the input as a little-endian byte stream (missing bytes read as 0, so any
 * input is a complete program), and invariant checks that abort with the
 * harness's name, the line and the condition (libFuzzer then saves the
 * input). Header-only; each harness is single-threaded.
 */
#ifndef VNET_FUZZ_COMMON_H
#define VNET_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Aborts with "<harness>: invariant failed at file:line: cond". */
#define FUZZ_CHECK(harness, cond)                                                      \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s: invariant failed at %s:%d: %s\n", harness,  \
				__FILE__, __LINE__, #cond);                            \
			abort();                                                       \
		}                                                                      \
	} while (0)

struct reader {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t rd8(struct reader *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static inline uint16_t rd16(struct reader *r)
{
	uint16_t lo = rd8(r);
	return (uint16_t)(lo | (uint16_t)rd8(r) << 8);
}

static inline uint32_t rd32(struct reader *r)
{
	uint32_t lo = rd16(r);
	return lo | (uint32_t)rd16(r) << 16;
}

static inline uint64_t rd64(struct reader *r)
{
	uint64_t lo = rd32(r);
	return lo | (uint64_t)rd32(r) << 32;
}

/* Skips n bytes (fewer when the input ends). */
static inline void rd_skip(struct reader *r, size_t n)
{
	if (n > r->n)
		n = r->n;
	r->p += n;
	r->n -= n;
}

#endif
