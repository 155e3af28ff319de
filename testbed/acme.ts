// The seed's certificate path stood up in the lab, on a client of the shadow segment: an
// authoritative DNS server taking RFC2136 updates signed with a TSIG key (BIND 9, Debian's
// package) and an ACME server (pebble, Let's Encrypt's test server, built from its module) that
// validates DNS-01 challenges against that DNS server. Both are real servers doing the real
// protocol; the lab stands in only for who runs them (the public CA and the operator's DNS).
// Their processes carry the lab's marker: `testbed down` kills them with the lab.
import * as fs from "fs";
import * as path from "path";
import type { TestbedClient } from "./client";
import { run, waitFor } from "./processes";
import type { TestbedState } from "./state";

export interface AcmeLab {
  /** the address both servers listen on */
  address: string;
  zone: string;
  /** ACME directory URL */
  directory: string;
  /** PEM of the CA that signed pebble's HTTPS certificate (the ClusterIssuer's caBundle) */
  serverCa: string;
  tsig: { name: string; algorithm: "HMACSHA512"; secret: string };
  /** PEM of pebble's issuing root (what issued certificates chain to); a new one each start */
  issuingRoot(): Promise<string>;
  /** TXT records under the zone, as `name text` lines (AXFR from the server: it is authoritative) */
  txtRecords(): Promise<string[]>;
}

/** Starts named and pebble in `client`'s namespace on `address` (one of the client's addresses). */
export async function startAcmeLab(
  lab: TestbedState,
  client: TestbedClient,
  opts: { address: string; zone: string; pebble: string },
): Promise<AcmeLab> {
  const dir = path.join(lab.stateDir, "acme");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { address, zone } = opts;
  const keyName = "k8sbm-acme";
  // tsig-keygen prints a named.conf `key` clause; its secret is what cert-manager signs with
  const keyClause = run("tsig-keygen", ["-a", "hmac-sha512", keyName]);
  const secret = /secret "([^"]+)"/.exec(keyClause)?.[1];
  if (!secret) throw new Error(`tsig-keygen printed no secret: ${keyClause}`);
  fs.writeFileSync(path.join(dir, "tsig.key"), keyClause, { mode: 0o600 });
  fs.writeFileSync(
    path.join(dir, "named.conf"),
    `options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  listen-on port 53 { ${address}; };
  listen-on-v6 { none; };
  recursion no;
  allow-transfer { ${address}; };
  dnssec-validation no;
};
include "${dir}/tsig.key";
zone "${zone}" {
  type primary;
  file "${dir}/${zone}.zone";
  // least privilege: the key may change TXT records under the zone and nothing else
  update-policy { grant ${keyName} subdomain ${zone}. TXT; };
};
`,
  );
  fs.writeFileSync(
    path.join(dir, `${zone}.zone`),
    `$TTL 60
@ IN SOA ns.${zone}. hostmaster.${zone}. 1 60 60 3600 60
@ IN NS ns.${zone}.
ns IN A ${address}
`,
  );
  await client.exec(`named -c ${dir}/named.conf -L ${dir}/named.log`);
  await waitFor("named answering", 30_000, async () =>
    (await client.exec(`dig +short +time=1 +tries=1 @${address} SOA ${zone}`, { allowFail: true })).stdout.includes(`ns.${zone}.`)
      ? true
      : undefined,
  );

  // pebble's HTTPS certificate, for its address, from a CA of our own
  const ssl = (args: string) => client.exec(`cd ${dir} && openssl ${args} 2>&1`);
  await ssl(`req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=k8sbm-lab-acme-ca`);
  await ssl(`req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout pebble.key -out pebble.csr -subj /CN=${address}`);
  fs.writeFileSync(path.join(dir, "san.ext"), `subjectAltName=IP:${address}\nextendedKeyUsage=serverAuth\n`);
  await ssl(`x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out pebble.pem -days 2 -extfile san.ext`);
  fs.writeFileSync(
    path.join(dir, "pebble.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `${address}:14000`,
        managementListenAddress: `${address}:15000`,
        certificate: path.join(dir, "pebble.pem"),
        privateKey: path.join(dir, "pebble.key"),
        httpPort: 5002,
        tlsPort: 5001,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  // no sleep before validating, no nonces refused at random: pebble's testing noise, which the
  // public CA does not make (validation itself stays real: PEBBLE_VA_ALWAYS_VALID is not set)
  await client.exec(
    `cd ${dir} && PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 setsid ${opts.pebble} -config pebble.json -dnsserver ${address}:53 ` +
      `>pebble.log 2>&1 </dev/null & echo $! > ${dir}/pebble.pid`,
  );
  const curl = (url: string) => client.exec(`curl -sf --max-time 5 --cacert ${dir}/ca.pem ${url}`, { allowFail: true });
  const directory = `https://${address}:14000/dir`;
  await waitFor("pebble answering", 30_000, async () => ((await curl(directory)).code === 0 ? true : undefined));
  return {
    address,
    zone,
    directory,
    serverCa: fs.readFileSync(path.join(dir, "ca.pem"), "utf8"),
    tsig: { name: keyName, algorithm: "HMACSHA512", secret },
    issuingRoot: async () => (await client.exec(`curl -sf --max-time 5 --cacert ${dir}/ca.pem https://${address}:15000/roots/0`)).stdout,
    txtRecords: async () =>
      (await client.exec(`dig +noall +answer -b ${address} @${address} AXFR ${zone}`)).stdout
        .split("\n")
        .map((l) => l.split(/\s+/))
        .filter((f) => f[3] === "TXT")
        .map((f) => `${f[0]} ${f.slice(4).join(" ")}`),
  };
}
