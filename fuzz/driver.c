// SPDX-License-Identifier: MIT
/*
 * Standalone replay driver: the main() a fuzz target gets when it is not
 * linked with libFuzzer (GLib's fuzzing/driver.c pattern). Every build,
 * with any compiler, runs each target over its committed corpus as an
 * ordinary test, so a target that stops compiling or an input that crashes
 * again is seen by every CI run, not only by fuzzing runs.
 *
 * Usage: fuzz_<target> PATH...  Each PATH is a file or a directory whose
 * files (not recursing, names starting with '.' skipped, sorted by name)
 * are fed one at a time to LLVMFuzzerTestOneInput(). Each input sits in a
 * buffer of exactly its size, so AddressSanitizer catches a read past it.
 *
 * Exit status: 0 when every input ran; 1 when a path could not be read or
 * no input was found at all (an empty corpus would make the test pass
 * without testing anything). A crash is the target's abort.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Inputs larger than this are not corpus entries; refuse rather than load them. */
#define DRIVER_MAX_INPUT (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Run one file. Return: 0, or -1 when it cannot be read. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	long size;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= DRIVER_MAX_INPUT &&
	    fseek(f, 0, SEEK_SET) == 0) {
		/* malloc(0) may return NULL; keep a valid pointer for empty inputs */
		buf = malloc(size ? (size_t)size : 1);
		if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
			LLVMFuzzerTestOneInput(buf, (size_t)size);
			rc = 0;
		}
	}
	if (rc < 0)
		fprintf(stderr, "replay: %s: cannot read it (or larger than %u bytes)\n", path,
			DRIVER_MAX_INPUT);
	free(buf);
	fclose(f);
	return rc;
}

static int skip_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Run every file of @dir in name order. Return: inputs run, or -1. */
static long run_dir(const char *dir)
{
	struct dirent **names;
	long done = 0;
	int n = scandir(dir, &names, skip_dot, alphasort);

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(path) < 0)
				done = -1;
			else if (done >= 0)
				done++;
		}
		free(names[i]);
	}
	free(names);
	return done;
}

int main(int argc, char **argv)
{
	long total = 0;
	bool failed = false;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failed = true;
			continue;
		}
		n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) == 0 ? 1 : -1);
		if (n < 0)
			failed = true;
		else
			total += n;
	}
	fprintf(stderr, "replay: %ld input(s) run\n", total);
	if (total == 0) {
		fprintf(stderr, "replay: no input found\n");
		failed = true;
	}
	return failed ? 1 : 0;
}
