// SystemUser: an unprivileged system account a service runs something as (keepalived's check
// script user), and the directories that account must be able to search. Created with the
// OS's own tool (useradd, or BusyBox adduser), no home, no login shell; removed on delete only
// when the program created it.
import { shq } from "../ssh/shell";
import type { Host, SshTarget } from "../ssh/types";
import { diffOf, hostOf, type Provider } from "./common";

export interface SystemUserInputs {
  connection: SshTarget;
  name: string;
  /** what the account is for (its GECOS comment) */
  comment: string;
  /**
   * Directories, parents first, this account must be able to search: created 0701 when
   * missing, otherwise given search permission for others (no other bit changes).
   */
  searches: string[];
}

export interface SystemUserOutputs extends SystemUserInputs {
  /** the account exists and every directory in `searches` is searchable by others */
  present: boolean;
  createdByUs: boolean;
}

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

function checked(i: SystemUserInputs): SystemUserInputs {
  if (!NAME.test(i.name)) throw new Error(`${i.connection.name}: not a valid system user name: ${JSON.stringify(i.name)}`);
  for (const d of i.searches)
    if (!/^\/[A-Za-z0-9._/-]*$/.test(d) || d.includes(".."))
      throw new Error(`${i.connection.name}: not a plain absolute directory: ${JSON.stringify(d)}`);
  if (/['\n\\]/.test(i.comment)) throw new Error(`${i.connection.name}: the comment of ${i.name} has a quote, backslash or newline`);
  return i;
}

/** Prints "present" when the account exists and every directory is searchable by others. */
export function probeCommand(i: SystemUserInputs): string {
  const dirs = i.searches.map((d) => `{ [ -d ${shq(d)} ] && [ -n "$(find ${shq(d)} -maxdepth 0 -perm -o+x)" ]; }`);
  return [`id -u ${shq(i.name)} >/dev/null 2>&1`, ...dirs].join(" && ") + " && echo present || echo absent";
}

/** Creates the account if it is missing (prints "created" then) and grants the searches. */
export function ensureCommand(i: SystemUserInputs): string {
  const u = shq(i.name);
  const c = shq(i.comment);
  return [
    `if ! id -u ${u} >/dev/null 2>&1; then`,
    `  nologin=$(command -v nologin || echo /bin/false)`,
    "  if command -v useradd >/dev/null 2>&1; then",
    `    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$nologin" --comment ${c} ${u}`,
    "  elif command -v adduser >/dev/null 2>&1; then",
    `    adduser -S -D -H -h /nonexistent -s "$nologin" -g ${c} ${u}`,
    "  else",
    `    echo "neither useradd nor adduser: cannot create the system user ${i.name}" >&2; exit 3`,
    "  fi",
    "  echo created",
    "fi",
    ...i.searches.map((d) => `[ -d ${shq(d)} ] || mkdir -m 0700 ${shq(d)}; chmod o+x ${shq(d)}`),
  ].join("\n");
}

export function deleteCommand(name: string): string {
  const u = shq(name);
  return `if id -u ${u} >/dev/null 2>&1; then if command -v userdel >/dev/null 2>&1; then userdel ${u}; else deluser ${u}; fi; fi`;
}

async function ensure(host: Host, i: SystemUserInputs): Promise<boolean> {
  const out = (await host.exec(`set -e\n${ensureCommand(i)}`, { mutates: true })).stdout;
  return out.split("\n").includes("created");
}

export const provider: Provider<SystemUserInputs, SystemUserOutputs> = {
  async create(inputs) {
    const i = checked(inputs);
    const host = await hostOf(i.connection);
    const probe = (await host.exec(probeCommand(i))).stdout.trim();
    const createdByUs = probe === "present" ? false : await ensure(host, i);
    return { id: `${i.connection.name}:user:${i.name}`, outs: { ...inputs, present: true, createdByUs } };
  },
  async diff(_id, olds, news) {
    const d = diffOf(olds as never, news as never, ["comment", "searches"], ["name"]);
    // refresh found the account or a search permission gone: ensure it again
    return olds.present === false ? { ...d, changes: true } : d;
  },
  async read(id, props) {
    const host = await hostOf(props.connection);
    return { id, props: { ...props, present: (await host.exec(probeCommand(props))).stdout.trim() === "present" } };
  },
  async update(_id, olds, news) {
    const created = await ensure(await hostOf(news.connection), checked(news));
    return { outs: { ...news, present: true, createdByUs: olds.createdByUs || created } };
  },
  async delete(_id, props) {
    if (props.createdByUs) await (await hostOf(props.connection)).exec(deleteCommand(props.name), { mutates: true });
  },
};
