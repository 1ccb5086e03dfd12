/*
 * ctl_client.h — vnetctl's logic without I/O: command line -> request JSON
 * (with client-side checks of obviously malformed input) and response JSON
 * -> OVS-like text. vnetctl.c only connects and sends.
 *
 * Exit statuses: CTL_EXIT_OK, CTL_EXIT_FAILED (the daemon refused:
 * "no bridge br9"), CTL_EXIT_USAGE (bad command line, nothing sent),
 * CTL_EXIT_COMM (cannot reach the daemon, timeout, unreadable answer).
 */
#ifndef VNET_SWITCH_CTL_CLIENT_H
#define VNET_SWITCH_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "switch/ctl_proto.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILED 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_COMM 3

#define CTL_CLIENT_DEFAULT_TIMEOUT 10 /* s to wait for an answer (capture: its timeout + 10) */

struct ctl_cli {
	enum ctl_cmd cmd;
	char *request;            /* one JSON object, no "\n" (malloc'd); NULL with help/version_only */
	char socket[CTL_PATH_MAX]; /* --socket, else $VNET_CTL_SOCKET, else the default */
	bool json;                /* --json: print the raw response */
	bool help;                /* -h/--help */
	bool version_only;        /* -V/--version: the client's version, no daemon */
	unsigned timeout_s;       /* how long to wait for the answer */
};

/* Parses vnetctl's argv (argv[0] is the program). 0, or -1 with err
 * ("unknown command 'foo'", "add-port: missing type="). ctl_cli_free() after. */
int ctl_cli_parse(int argc, char **argv, struct ctl_cli *cli, char *err, size_t errlen);
void ctl_cli_free(struct ctl_cli *cli);
void ctl_cli_usage(FILE *out);

/* Prints a response for the command (raw with --json); errors go to errout
 * as "vnetctl: <error>". Returns the exit status. */
int ctl_cli_print(const struct ctl_cli *cli, const char *response, FILE *out, FILE *errout);

#endif
