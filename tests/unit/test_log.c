/* test_log.c — level parsing and filtering through a sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testmem.h"
#include "vnet/log.h"

static int teardown(void **state)
{
	(void)state;
	testlog_release();
	return 0;
}

static void test_parse_level(void **state)
{
	(void)state;
	assert_int_equal(vnet_log_parse_level("error"), VNET_LOG_ERROR);
	assert_int_equal(vnet_log_parse_level("warn"), VNET_LOG_WARN);
	assert_int_equal(vnet_log_parse_level("info"), VNET_LOG_INFO);
	assert_int_equal(vnet_log_parse_level("debug"), VNET_LOG_DEBUG);
	assert_int_equal(vnet_log_parse_level("verbose"), -1);
	assert_int_equal(vnet_log_parse_level(""), -1);
	assert_int_equal(vnet_log_parse_level("info2"), -1);
	assert_int_equal(vnet_log_parse_level("inf"), -1);
}

static void test_level_filtering(void **state)
{
	(void)state;
	testlog_capture();
	vnet_log_set_level(VNET_LOG_WARN);
	assert_int_equal(vnet_log_get_level(), VNET_LOG_WARN);
	vnet_debug("d %d", 1);
	vnet_info("i %d", 2);
	vnet_warn("w %d", 3);
	vnet_err("e %d", 4);
	assert_int_equal(testlog_count(), 2);
	assert_non_null(strstr(testlog_line(0), "w 3"));
	assert_int_equal(testlog_level(0), VNET_LOG_WARN);
	assert_non_null(strstr(testlog_line(1), "e 4"));
	assert_int_equal(testlog_level(1), VNET_LOG_ERROR);

	testlog_clear();
	vnet_log_set_level(VNET_LOG_DEBUG);
	vnet_debug("d %s", "x");
	assert_int_equal(testlog_count(), 1);
	assert_non_null(strstr(testlog_line(0), "d x"));

	testlog_clear();
	vnet_log_set_level(VNET_LOG_ERROR);
	vnet_warn("nope");
	assert_int_equal(testlog_count(), 0);
}

static void test_sink_gets_one_line(void **state)
{
	(void)state;
	testlog_capture();
	vnet_info("multi\n");
	assert_int_equal(testlog_count(), 1);
	assert_null(strchr(testlog_line(0), '\n'));
	/* a long message is truncated, not dropped or split */
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vnet_info("%s", big);
	assert_int_equal(testlog_count(), 2);
	assert_true(strlen(testlog_line(1)) > 100);
	/* removing the sink stops delivery to it */
	testlog_release();
	vnet_log_set_level(VNET_LOG_ERROR); /* keep stderr quiet */
	vnet_info("to stderr");
	assert_int_equal(testlog_count(), 2);
}

/* A front-end reconnecting with bad messages in a loop: a burst a minute,
 * then a count. */
static void test_limited_lines(void **state)
{
	(void)state;
	testlog_capture();
	vnet_log_set_level(VNET_LOG_INFO);
	struct vnet_log_limit lim = {0};
	for (int i = 0; i < 25; i++)
		vnet_log_limited(&lim, VNET_LOG_ERROR, "bad message %d", i);
	assert_int_equal(testlog_count(), VNET_LOG_LIMIT_BURST);
	assert_non_null(strstr(testlog_line(0), "bad message 0"));
	assert_null(strstr(testlog_line(0), "left out"));
	assert_non_null(strstr(testlog_line(VNET_LOG_LIMIT_BURST - 1), "more such lines this minute are left out"));
	assert_int_equal(lim.kind[0].suppressed, 25 - VNET_LOG_LIMIT_BURST);

	/* below the level: neither written nor counted */
	vnet_log_limited(&lim, VNET_LOG_DEBUG, "debug");
	assert_int_equal(lim.kind[0].suppressed, 25 - VNET_LOG_LIMIT_BURST);

	/* a minute later the first line says how many were left out */
	lim.kind[0].window_start_ms -= 60000;
	vnet_log_limited(&lim, VNET_LOG_ERROR, "bad message %d", 25);
	assert_int_equal(testlog_count(), VNET_LOG_LIMIT_BURST + 1);
	assert_non_null(strstr(testlog_line(VNET_LOG_LIMIT_BURST), "bad message 25 (15 similar lines left out"));
	assert_int_equal(lim.kind[0].suppressed, 0);

	/* another kind of line is not held back by the flood of the first */
	vnet_log_limited(&lim, VNET_LOG_ERROR, "other cause %d", 1);
	assert_non_null(strstr(testlog_line(testlog_count() - 1), "other cause 1"));
	/* A peer cycling through more causes than the table holds still gets at
	 * most KINDS x burst lines a minute: the late kinds share one entry. */
	static const char causes[3 * VNET_LOG_LIMIT_KINDS]; /* one key per cause */
	struct vnet_log_limit many = {.burst = 2};
	testlog_clear();
	for (int round = 0; round < 20; round++)
		for (unsigned c = 0; c < sizeof(causes); c++)
			vnet_log_limited_as(&many, &causes[c], VNET_LOG_ERROR, "cause %u", c);
	assert_int_equal(testlog_count(), VNET_LOG_LIMIT_KINDS * 2);
	/* the table's own kinds each got their lines */
	assert_int_equal(testlog_count_containing("cause 0"), 2);
	assert_int_equal(testlog_count_containing("cause 6"), 2);
	/* burst 1: the first line only, saying more are left out */
	struct vnet_log_limit once = {.burst = 1};
	testlog_clear();
	for (int i = 0; i < 5; i++)
		vnet_log_limited(&once, VNET_LOG_WARN, "refused %d", i);
	assert_int_equal(testlog_count(), 1);
	assert_non_null(strstr(testlog_line(0), "refused 0 (more such lines this minute are left out)"));
	assert_int_equal(once.kind[0].suppressed, 4);

	/* no limit: every line */
	testlog_clear();
	for (int i = 0; i < 25; i++)
		vnet_log_limited(NULL, VNET_LOG_ERROR, "x");
	assert_int_equal(testlog_count(), 25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_level),
		cmocka_unit_test_teardown(test_level_filtering, teardown),
		cmocka_unit_test_teardown(test_sink_gets_one_line, teardown),
		cmocka_unit_test_teardown(test_limited_lines, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
