/* capture.c — pcap capture of a port's frames; see capture.h. */
#include "switch/capture.h"

#include <pcap/pcap.h>
#include <stdatomic.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define CAPTURE_SLOTS 1024
#define CAPTURE_SNAPLEN 65535u
#define CAPTURE_SLOT_BYTES 2048u /* longer frames are stored in full, from the heap */

struct capture_slot {
	struct timeval ts;
	uint32_t len;     /* original length */
	uint32_t caplen;  /* bytes kept */
	uint8_t *data;    /* inline buffer, or heap for long frames */
	uint8_t inline_buf[CAPTURE_SLOT_BYTES];
};

struct sw_capture {
	pcap_t *dead;
	pcap_dumper_t *dumper;
	uint64_t count;
	uint64_t written;
	_Atomic uint64_t missed;
	atomic_flag lock;
	unsigned head, tail; /* queue indexes under lock: [tail, head) are full */
	struct capture_slot slots[CAPTURE_SLOTS];
};

struct sw_capture *sw_capture_start(const char *file, uint64_t count, char *err, size_t errlen)
{
	struct sw_capture *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "capture: out of memory");
		return NULL;
	}
	c->dead = pcap_open_dead(DLT_EN10MB, (int)CAPTURE_SNAPLEN);
	/* A new file only, never through a symlink: the daemon may run with
	 * more rights than whoever names the file. */
	int fd = c->dead ? open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	int open_errno = errno;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	c->dumper = f ? pcap_dump_fopen(c->dead, f) : NULL;
	if (!c->dumper) {
		snprintf(err, errlen, "capture: cannot write %s: %s", file,
			 !c->dead ? "pcap_open_dead failed"
			 : fd < 0 ? (open_errno == EEXIST ? "file exists (captures never overwrite)"
				     : open_errno == ELOOP ? "is a symlink (refused)" : strerror(open_errno))
				  : pcap_geterr(c->dead));
		if (f)
			fclose(f);
		else if (fd >= 0)
			close(fd);
		if (c->dead)
			pcap_close(c->dead);
		if (fd >= 0)
			unlink(file);
		free(c);
		return NULL;
	}
	c->count = count;
	atomic_flag_clear(&c->lock);
	return c;
}

void sw_capture_frame(struct sw_capture *c, const uint8_t *data, uint32_t len)
{
	uint32_t caplen = len < CAPTURE_SNAPLEN ? len : CAPTURE_SNAPLEN;
	while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
		;
	if (c->head - c->tail == CAPTURE_SLOTS) {
		atomic_flag_clear_explicit(&c->lock, memory_order_release);
		atomic_fetch_add_explicit(&c->missed, 1, memory_order_relaxed);
		return;
	}
	struct capture_slot *s = &c->slots[c->head % CAPTURE_SLOTS];
	s->data = caplen <= CAPTURE_SLOT_BYTES ? s->inline_buf : malloc(caplen);
	if (!s->data) {
		atomic_flag_clear_explicit(&c->lock, memory_order_release);
		atomic_fetch_add_explicit(&c->missed, 1, memory_order_relaxed);
		return;
	}
	gettimeofday(&s->ts, NULL);
	s->len = len;
	s->caplen = caplen;
	memcpy(s->data, data, caplen);
	c->head++;
	atomic_flag_clear_explicit(&c->lock, memory_order_release);
}

bool sw_capture_drain(struct sw_capture *c)
{
	for (;;) {
		while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
			;
		bool empty = c->head == c->tail;
		struct capture_slot *s = &c->slots[c->tail % CAPTURE_SLOTS];
		atomic_flag_clear_explicit(&c->lock, memory_order_release);
		if (empty || (c->count && c->written >= c->count))
			break;
		/* Writers never touch a slot in [tail, head), so it is read unlocked. */
		struct pcap_pkthdr h = {.ts = s->ts, .caplen = s->caplen, .len = s->len};
		pcap_dump((u_char *)c->dumper, &h, s->data);
		if (s->data != s->inline_buf)
			free(s->data);
		c->written++;
		while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
			;
		c->tail++;
		atomic_flag_clear_explicit(&c->lock, memory_order_release);
	}
	pcap_dump_flush(c->dumper);
	return c->count && c->written >= c->count;
}

uint64_t sw_capture_written(const struct sw_capture *c)
{
	return c->written;
}

uint64_t sw_capture_missed(const struct sw_capture *c)
{
	return atomic_load_explicit(&c->missed, memory_order_relaxed);
}

void sw_capture_stop(struct sw_capture *c)
{
	sw_capture_drain(c);
	/* Frames beyond `count` may still be queued: release their heap copies. */
	for (; c->tail != c->head; c->tail++) {
		struct capture_slot *s = &c->slots[c->tail % CAPTURE_SLOTS];
		if (s->data != s->inline_buf)
			free(s->data);
	}
	pcap_dump_close(c->dumper);
	pcap_close(c->dead);
	free(c);
}
