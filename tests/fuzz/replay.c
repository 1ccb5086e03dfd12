/*
 * replay.c — runs fuzz inputs without libFuzzer, so the checked-in corpus
 * (seeds and crash-* regression inputs) is exercised by every build,
 * including gcc builds without -fsanitize=fuzzer.
 *
 *   replay_vq_split PATH...   PATH is a file or a directory of inputs
 *
 * Each input is fed to LLVMFuzzerTestOneInput once; a harness invariant
 * failure aborts, and so does an input that runs longer than
 * $FUZZ_REPLAY_TIMEOUT seconds (default 10: libFuzzer's -timeout in
 * run-fuzz.sh), so a saved hang fails fast instead of at the test's
 * timeout. Exit status 0 when every input ran, 2 on usage/IO errors.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned timeout_s = 10;
static char current[4096]; /* the input running now, for the watchdog */

static void hung(int sig)
{
	(void)sig;
	static const char what[] = "replay: still running after the timeout (a hang): ";
	(void)!write(STDERR_FILENO, what, sizeof(what) - 1);
	(void)!write(STDERR_FILENO, current, strlen(current));
	(void)!write(STDERR_FILENO, "\n", 1);
	abort();
}

static int run_file(const char *path, unsigned *count)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return -1;
	}
	size_t n;
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		return -1;
	}
	/* An exact-size copy, so ASan catches a harness reading past the end. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	snprintf(current, sizeof(current), "%s", path);
	alarm(timeout_s);
	LLVMFuzzerTestOneInput(exact, len);
	alarm(0);
	free(exact);
	(*count)++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, unsigned *count)
{
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && run_file(path, count) < 0)
			ret = -1;
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	const char *t = getenv("FUZZ_REPLAY_TIMEOUT");
	if (t && atoi(t) > 0)
		timeout_s = (unsigned)atoi(t);
	signal(SIGALRM, hung);
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	unsigned count = 0;
	int ret = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			ret = 2;
		} else if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) < 0
					       : run_file(argv[i], &count) < 0) {
			ret = 2;
		}
	}
	printf("replay: %u inputs ran without failure\n", count);
	if (count == 0 && ret == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		ret = 2;
	}
	return ret;
}
