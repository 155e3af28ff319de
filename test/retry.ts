// Suites that drive live systems (real sshd, keepalived, kubeadm, cilium, libvirtd) retry a failed
// test once. Their timing is the machine's: a probe or a VRRP election can lose a race on two
// loaded cores, and one such loss would cost a whole CI run. The first failure is still printed
// ("logErrorsBeforeRetry"), and a test that fails twice fails the run. Unit suites do not retry.
const LIVE = /[\\/]test[\\/](e2e|ssh|testbed|kubeadm)[\\/]/;

if (LIVE.test(expect.getState().testPath ?? "")) jest.retryTimes(1, { logErrorsBeforeRetry: true });
