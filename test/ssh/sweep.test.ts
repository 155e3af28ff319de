// Temp files an interrupted run left on a host are removed by the next run's first change to
// that host (issue 16) — only the program's own (prefix, owner, older than this run), on a real
// sshd in a testbed host.
import { closeAll, connect } from "../../providers/ssh";
import { TEMP_PREFIX } from "../../providers/ssh/shell";
import { hostExec, sshTarget } from "../../testbed";
import { describeTestbed, useTestbed } from "../testbed";

/** before this process (the run) started, by a minute */
const BEFORE_RUN = Math.floor((Date.now() - process.uptime() * 1000) / 1000) - 60;

describeTestbed("temp files of an interrupted run", () => {
  const lab = useTestbed("jest-sweep", 1, { basePort: 22760 });
  const sh = async (cmd: string) => (await hostExec(lab(), "k8s-1", cmd)).stdout;
  afterAll(() => closeAll());

  const stale = [
    `/tmp/${TEMP_PREFIX}kubecf`, // a kubeconfig copy a killed kubectl left
    `/etc/kubernetes/${TEMP_PREFIX}wrjoin`, // a file write cut short beside its target
    `/var/lib/k8s-baremetal/backup/etc/${TEMP_PREFIX}backup`,
  ];
  const survivors = {
    unrelated: "/tmp/tmp.unrelated", // someone else's, same age
    notOurs: `/tmp/${TEMP_PREFIX}nobody`, // the prefix, but not owned by the user commands run as
    fresh: `/tmp/${TEMP_PREFIX}fresh`, // made during this run: a command of this run may use it
    dir: `/tmp/${TEMP_PREFIX}dir`, // not a regular file
    elsewhere: `/srv/${TEMP_PREFIX}srv`, // outside where the program writes
  };

  test("the first changing command sweeps them; reads do not; unrelated files survive", async () => {
    await sh(
      [
        "mkdir -p /etc/kubernetes /var/lib/k8s-baremetal/backup/etc /srv",
        ...[...stale, survivors.unrelated, survivors.notOurs, survivors.elsewhere].map(
          (f) => `echo secret > ${f} && touch -d @${BEFORE_RUN} ${f}`,
        ),
        `chown 65534 ${survivors.notOurs}`,
        `mkdir ${survivors.dir} && touch -d @${BEFORE_RUN} ${survivors.dir}`,
        `echo in-use > ${survivors.fresh}`,
      ].join(" && "),
    );
    const all = [...stale, ...Object.values(survivors)];
    const present = async () =>
      (await sh(`for f in ${all.join(" ")}; do [ -e "$f" ] && echo "$f"; done; true`)).trim().split("\n").filter(Boolean);
    expect(await present()).toEqual(all);

    const h = await connect(sshTarget(lab(), "k8s-1"));
    await h.exec("true");
    await h.readFile("/etc/hostname");
    expect(await present()).toEqual(all); // a run that only reads changes nothing

    await h.exec("touch /tmp/k8sbm-sweep-marker", { mutates: true });
    expect(await present()).toEqual(Object.values(survivors));
    expect(await sh("cat /tmp/k8sbm-sweep-marker && echo ran")).toBe("ran\n"); // the command itself ran

    // once per host and run: a stale file that appears later waits for the next run
    await sh(`echo x > ${stale[0]} && touch -d @${BEFORE_RUN} ${stale[0]}`);
    await h.writeFile("/etc/kubernetes/k8sbm-sweep-written", "x", 0o600);
    expect(await present()).toContain(stale[0]);
  }, 60_000);
});
