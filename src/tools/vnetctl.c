/*
 * vnetctl — control vnet-switchd over its Unix socket (JSON, one object per
 * line). The command line and the output live in src/switch/ctl_client.c;
 * this file connects, sends and prints. See vnetctl(8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "switch/ctl_client.h"
#include "switch/ctl_proto.h"

int main(int argc, char **argv)
{
	struct ctl_cli cli;
	char err[1024];

	if (ctl_cli_parse(argc, argv, &cli, err, sizeof err) < 0) {
		fprintf(stderr, "vnetctl: %s\n", err);
		fprintf(stderr, "Try 'vnetctl --help'.\n");
		ctl_cli_free(&cli);
		return CTL_EXIT_USAGE;
	}
	if (cli.help) {
		ctl_cli_usage(stdout);
		ctl_cli_free(&cli);
		return CTL_EXIT_OK;
	}
	if (cli.version_only) {
		printf("vnetctl %s\n", VNET_VERSION);
		ctl_cli_free(&cli);
		return CTL_EXIT_OK;
	}

	int fd = ctl_connect(cli.socket, err, sizeof err);
	if (fd < 0) {
		if (cli.cmd == CTL_CMD_VERSION && !cli.json)
			printf("vnetctl %s\n", VNET_VERSION);
		fprintf(stderr, "vnetctl: %s\n", err);
		ctl_cli_free(&cli);
		return CTL_EXIT_COMM;
	}
	char *resp = NULL;
	int rc;
	if (ctl_call(fd, cli.request, (int)cli.timeout_s * 1000, &resp, err, sizeof err) < 0) {
		fprintf(stderr, "vnetctl: %s\n", err);
		rc = CTL_EXIT_COMM;
	} else {
		rc = ctl_cli_print(&cli, resp, stdout, stderr);
	}
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_COMM;
	free(resp);
	close(fd);
	ctl_cli_free(&cli);
	return rc;
}
