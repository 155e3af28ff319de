/* pause: the pod sandbox's init. Sleeps until told to stop and reaps adopted children. As the
 * registry's pause, `-v` prints its version and exits 0: kubeadm's upgrade health check runs
 * it so, as a Job that must complete. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) { printf("pause.c k8s-baremetal lab\n"); return 0; }
  signal(SIGINT, stop); signal(SIGTERM, stop); signal(SIGCHLD, reap);
  for (;;) pause();
}
