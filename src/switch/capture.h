/*
 * capture.h — `vnetctl capture PORT`: frames a port receives and sends are
 * copied by the poll-mode threads into a bounded queue, and the control
 * thread writes them to a pcap file with libpcap, so traffic never stops
 * and never waits for the disk. Frames that find the queue full are counted
 * as missed, not waited for.
 *
 * Thread-safety: sw_capture_frame() from any poll-mode thread (a spinlock
 * held for one memcpy); start/drain/stop on the control thread. The port
 * publishes a session through its atomic `capture` pointer; stop() must be
 * called only after that pointer was cleared and the poll-mode threads
 * passed a quiescent point.
 */
#ifndef VNET_SWITCH_CAPTURE_H
#define VNET_SWITCH_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sw_capture;

/* Opens `file` for writing (Ethernet link type). count 0 = until stopped. */
struct sw_capture *sw_capture_start(const char *file, uint64_t count, char *err, size_t errlen);

/* Queues a copy of one frame (snapped to 65535 bytes). */
void sw_capture_frame(struct sw_capture *c, const uint8_t *data, uint32_t len);

/* Writes queued frames to the file; true once `count` frames are written. */
bool sw_capture_drain(struct sw_capture *c);

/* Frames written and frames missed (queue full) so far. */
uint64_t sw_capture_written(const struct sw_capture *c);
uint64_t sw_capture_missed(const struct sw_capture *c);

/* Drains, closes the file and frees the session. */
void sw_capture_stop(struct sw_capture *c);

#endif
