/* Load generator for bench/sensor.sh.
 *   storm exec N [RATE]   fork+exec N times /bin/true (or $STORM_EXE); RATE per second (0: as fast as possible)
 *   storm open N PATH     open+close PATH N times
 * Prints: <seconds elapsed> */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: storm exec N [RATE] | storm open N PATH\n"); return 2; }
  long n = atol(argv[2]);
  double t0 = now();
  if (!strcmp(argv[1], "exec")) {
    double rate = argc > 3 ? atof(argv[3]) : 0;
    const char *exe = getenv("STORM_EXE") ? getenv("STORM_EXE") : "/bin/true";
    for (long i = 0; i < n; i++) {
      if (rate > 0) {
        double due = t0 + i / rate, d = due - now();
        if (d > 0) { struct timespec s = { (time_t)d, (long)((d - (time_t)d) * 1e9) }; nanosleep(&s, NULL); }
      }
      pid_t p = fork();
      if (p == 0) { execl(exe, exe, (char *)NULL); _exit(127); }
      if (p < 0) { perror("fork"); return 1; }
      int st; waitpid(p, &st, 0);
    }
  } else if (!strcmp(argv[1], "open") && argc > 3) {
    for (long i = 0; i < n; i++) {
      int fd = open(argv[3], O_RDONLY);
      if (fd >= 0) close(fd);
    }
  } else { fprintf(stderr, "bad mode\n"); return 2; }
  printf("%.4f\n", now() - t0);
  return 0;
}
