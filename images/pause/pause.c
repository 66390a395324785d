/*
 * The pod sandbox's first process: it holds the pod's namespaces open and does nothing else.
 * It sleeps until SIGTERM or SIGINT (then exits 0) and, as PID 1 of a pod that shares its PID
 * namespace, reaps every child that is re-parented to it so no zombie is left behind.
 * Built static (gcc -static), so the image needs no libc: images/pause/Dockerfile.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
  (void)signo;
  _exit(0);
}

static void reap(int signo) {
  (void)signo;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int on(int signo, void (*handler)(int)) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = signo == SIGCHLD ? SA_NOCLDSTOP | SA_RESTART : SA_RESTART;
  return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("pause (nginx-meshctl)");
    return 0;
  }
  if (getpid() != 1) {
    fprintf(stderr, "pause: warning: not PID 1; children of other processes are not reaped\n");
  }
  if (on(SIGINT, stop) != 0 || on(SIGTERM, stop) != 0 || on(SIGCHLD, reap) != 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
