// SystemUser on a real host: keepalived's unprivileged check-script user, created once, the
// directories it must search granted, removed on delete only when the program created it.
import { provider, type SystemUserInputs } from "../../providers/impl/system-user";
import { hostExec, sshTarget } from "../../testbed";
import { describeTestbed, useTestbed } from "../testbed";

describeTestbed("SystemUser on a testbed host", () => {
  const lab = useTestbed("jest-sysuser", 1, { basePort: 22765 });
  const sh = async (cmd: string) => (await hostExec(lab(), "k8s-1", cmd, { allowFail: true })).stdout.trim();
  const inputs = (): SystemUserInputs => ({
    connection: sshTarget(lab(), "k8s-1"),
    name: "k8sbm_test_user",
    comment: "k8sbm test",
    searches: ["/srv/k8sbm-a", "/srv/k8sbm-a/b"],
  });

  test("created with no login and no home; the directories made searchable; drift seen by read; removed on delete", async () => {
    await sh("mkdir -p /srv && rm -rf /srv/k8sbm-a && mkdir -m 0700 /srv/k8sbm-a && userdel k8sbm_test_user 2>/dev/null; true");
    const { id, outs } = await provider.create(inputs());
    expect(outs).toMatchObject({ present: true, createdByUs: true });
    expect(await sh("getent passwd k8sbm_test_user | cut -d: -f6,7")).toMatch(/^\/nonexistent:\/(usr\/)?s?bin\/(nologin|false)$/);
    expect(await sh("[ -e /nonexistent ] && echo exists || echo none")).toBe("none");
    // an existing directory only gains search for others; a missing one is made 0701
    expect(await sh("stat -c '%a' /srv/k8sbm-a /srv/k8sbm-a/b")).toBe("701\n701");
    expect(await sh("setpriv --reuid k8sbm_test_user --regid k8sbm_test_user --clear-groups sh -c 'touch /srv/k8sbm-a/b/x' 2>&1")).toMatch(
      /Permission denied/,
    );
    expect((await provider.read(id, outs)).props).toMatchObject({ present: true });
    // drift: a directory back to 0700 shows in read, and an update repairs it
    await sh("chmod 0700 /srv/k8sbm-a/b");
    const drifted = (await provider.read(id, outs)).props as typeof outs;
    expect(drifted.present).toBe(false);
    expect((await provider.diff(id, drifted, inputs())).changes).toBe(true);
    const updated = (await provider.update!(id, drifted, inputs())).outs;
    expect(updated).toMatchObject({ present: true, createdByUs: true });
    expect(await sh("stat -c '%a' /srv/k8sbm-a/b")).toBe("701");
    await provider.delete!(id, updated);
    expect(await sh("id -u k8sbm_test_user >/dev/null 2>&1 && echo present || echo gone")).toBe("gone");
  }, 60_000);

  test("an account that was there is adopted, not removed on delete", async () => {
    await sh("useradd --system --no-create-home k8sbm_test_user");
    const { id, outs } = await provider.create(inputs());
    expect(outs.createdByUs).toBe(false);
    await provider.delete!(id, outs);
    expect(await sh("id -u k8sbm_test_user >/dev/null 2>&1 && echo present || echo gone")).toBe("present");
    await sh("userdel k8sbm_test_user");
  }, 60_000);
});
