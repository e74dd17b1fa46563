import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, truncateSync, writeFileSync, closeSync, openSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { REPO_ROOT } from "../../helpers/fixtures.js";
import { Lab, ULVM_BIN, devicePathUnavailable, which } from "../../helpers/lab.js";
import { scratchBase } from "../../helpers/scratch.js";
import type { DevicePathRecord } from "../../../src/daemon/device-path.js";

/**
 * udev/69-ulvm.rules gives the loop device behind an active LV's device path
 * the udev name /dev/VG/LV and the systemd tag, so that systemd has the
 * dev-VG-LV.device unit an /etc/fstab line naming /dev/VG/LV waits for.
 *
 * No udevd runs here (a container), so the rule runs through `udevadm test`,
 * udev's offline run of the rules against a real device: the loop device the
 * daemon set up over its nbdfuse file. udevadm (systemd 252) reads rules only
 * from the standard directories, and writes the links and its database as
 * udevd would; so it runs in a private mount namespace (unshare) with tmpfs
 * over /run (holding the rule, as /run/udev/rules.d/69-ulvm.rules) and over
 * /dev (the nodes it needs bound in): everything it writes goes with the
 * namespace, whatever happens to the test. The rule's copy names the helper
 * by this checkout's path instead of /usr/lib/udev/ulvm-udev-id, the only
 * change.
 */
const RULE = join(REPO_ROOT, "udev", "69-ulvm.rules");
const HELPER = join(REPO_ROOT, "udev", "ulvm-udev-id");

function unavailable(): string | undefined {
  if (!which("udevadm")) return "udevadm not installed (apt-get install udev)";
  if (!which("unshare")) return "unshare (util-linux) not installed";
  const why = devicePathUnavailable();
  if (why) return why;
  if (spawnSync("unshare", ["--mount", "--propagation", "private", "true"]).status !== 0) return "cannot make a mount namespace (unshare --mount)";
  return undefined;
}
const skip = unavailable();

const NAMESPACE_SCRIPT = `
set -e
mount -t tmpfs -o mode=755 ulvm-udev-test /run
mkdir -p /run/udev/rules.d /run/real-dev
cp "$ULVM_RULE" /run/udev/rules.d/69-ulvm.rules
mount --bind /dev /run/real-dev
mount -t tmpfs -o mode=755 ulvm-udev-test /dev
for n in null zero urandom "$ULVM_LOOP"; do
  touch "/dev/$n"
  mount --bind "/run/real-dev/$n" "/dev/$n"
done
udevadm test --action="$ULVM_ACTION" "/sys/block/$ULVM_LOOP" 2>&1
find /dev -type l -printf 'LINK %P -> %l\\n'
`;

interface UdevResult {
  /** Properties udev ends with (DEVLINKS, TAGS, ULVM_VG...). */
  props: Map<string, string>;
  /** Symlinks udev made under /dev: relative path → target. */
  links: Map<string, string>;
  output: string;
}

function udevTest(ruleCopy: string, loop: string, action: "add" | "change"): UdevResult {
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT], {
    encoding: "utf8",
    env: { ...process.env, ULVM_RULE: ruleCopy, ULVM_LOOP: basename(loop), ULVM_ACTION: action },
    timeout: 60_000,
  });
  const output = (r.stdout ?? "") + (r.stderr ?? "");
  assert.equal(r.status, 0, output);
  const props = new Map<string, string>();
  const links = new Map<string, string>();
  for (const line of output.split("\n")) {
    const l = /^LINK (.+) -> (.+)$/.exec(line);
    if (l) links.set(l[1]!, l[2]!);
    const p = /^([A-Z_]+)=(.*)$/.exec(line);
    if (p) props.set(p[1]!, p[2]!);
  }
  // The rule file parses: udev names the file and line of anything it rejects.
  assert.doesNotMatch(output, /69-ulvm\.rules:\d+ .*(Invalid|invalid|Unknown|unknown|error)/, output);
  return { props, links, output };
}

/** `udevadm monitor --kernel` for block devices, once it listens. */
async function kernelUevents(): Promise<{ waitFor(event: string): Promise<void>; stop(): void }> {
  const child = spawn("udevadm", ["monitor", "--kernel", "--subsystem-match=block"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d.replace(/ +/g, " ");
    for (const w of waiters.splice(0)) w();
  });
  const until = (pred: () => boolean, what: string): Promise<void> =>
    new Promise((resolveP, reject) => {
      // A bound on a hang, not a timing threshold: the event comes at once or never.
      const timer = setTimeout(() => reject(new Error(`no ${what} from udevadm monitor:\n${out}`)), 30_000);
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          resolveP();
        } else waiters.push(check);
      };
      check();
    });
  await until(() => out.includes("KERNEL - the kernel uevent"), "header");
  return {
    waitFor: (event) => until(() => out.includes(event), `"${event}"`),
    stop: () => child.kill("SIGTERM"),
  };
}

function record(lab: Lab): DevicePathRecord {
  const dir = join(lab.dir, "run", "devices");
  const f = readdirSync(dir).find((n) => n.endsWith(".json"));
  assert.ok(f, "a device-path record");
  return JSON.parse(readFileSync(join(dir, f), "utf8")) as DevicePathRecord;
}

const devlinks = (r: UdevResult): string[] => (r.props.get("DEVLINKS") ?? "").split(" ").filter((s) => s.length > 0);

test("69-ulvm.rules names an active LV's loop device /dev/VG/LV, tagged for systemd, on add and change, and follows lvrename", { skip }, async () => {
  const lab = new Lab("ulvm-udev-");
  try {
    lab.addDisk("d1", 64);
    lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 1\n}\n`);
    const ruleCopy = join(lab.dir, "69-ulvm.rules");
    writeFileSync(ruleCopy, readFileSync(RULE, "utf8").replaceAll('"ulvm-udev-id ', `"${HELPER} `));
    lab.ok("pvcreate", lab.disk("d1"));
    // Hyphens: the daemon's names for them are doubled (my--vg-data--1), udev's are not.
    lab.ok("vgcreate", "my-vg", lab.disk("d1"));
    lab.ok("lvcreate", "-an", "-L", "8m", "-n", "data-1", "my-vg");
    lab.ok("vgchange", "-ay", "my-vg");
    const rec = record(lab);
    assert.ok(rec.loop, JSON.stringify(rec));
    const loop = rec.loop;

    for (const action of ["change", "add"] as const) {
      const r = udevTest(ruleCopy, loop, action);
      assert.equal(r.props.get("ULVM_VG"), "my-vg", r.output);
      assert.equal(r.props.get("ULVM_LV"), "data-1", r.output);
      assert.ok(devlinks(r).includes("/dev/my-vg/data-1"), r.output);
      assert.match(r.props.get("TAGS") ?? "", /:systemd:/, r.output);
      // udev's link and the daemon's reach the same device.
      const udevLink = r.links.get("my-vg/data-1");
      assert.ok(udevLink, r.output);
      assert.equal(resolve("/dev/my-vg", udevLink), loop);
      const daemonLink = join(lab.dir, "dev", "my-vg", "data-1");
      assert.equal(resolve(dirname(daemonLink), readlinkSync(daemonLink)), loop);
    }

    // lvrename of the active LV: same loop, same FUSE file; the daemon sends
    // the loop a "change" uevent (seen on the kernel's netlink socket, which
    // needs no udevd), and udev, rerunning the rule, names it anew.
    const monitor = await kernelUevents();
    try {
      lab.ok("lvrename", "my-vg", "data-1", "data-2");
      await monitor.waitFor(`change /devices/virtual/block/${basename(loop)} `);
    } finally {
      monitor.stop();
    }
    assert.equal(record(lab).loop, loop);
    const renamed = udevTest(ruleCopy, loop, "change");
    assert.ok(devlinks(renamed).includes("/dev/my-vg/data-2"), renamed.output);
    assert.ok(!devlinks(renamed).includes("/dev/my-vg/data-1"), renamed.output);
  } finally {
    lab.cleanup();
  }
});

test("69-ulvm.rules leaves other loop devices alone, even over a file named like ulvm's", { skip }, () => {
  const dir = mkdtempSync(join(scratchBase(), "ulvm-udev-other-"));
  let loop: string | undefined;
  try {
    const ruleCopy = join(dir, "69-ulvm.rules");
    writeFileSync(ruleCopy, readFileSync(RULE, "utf8").replaceAll('"ulvm-udev-id ', `"${HELPER} `));
    // The path of an ulvm device-path file, but no daemon's record names it.
    const file = join(dir, "run", "fuse", "vg-lv", "dev");
    mkdirSync(dirname(file), { recursive: true });
    closeSync(openSync(file, "w"));
    truncateSync(file, 8 * 1024 * 1024);
    loop = execFileSync("losetup", ["-f", "--show", file], { encoding: "utf8" }).trim();
    const r = udevTest(ruleCopy, loop, "change");
    assert.equal(r.props.get("ULVM_VG"), undefined, r.output);
    assert.ok(!devlinks(r).some((l) => l.startsWith("/dev/vg/")), r.output);
    // The helper did run (the path matched), and said nothing.
    assert.match(r.output, /ulvm-udev-id/, r.output);
  } finally {
    if (loop) spawnSync("losetup", ["-d", loop]);
    rmSync(dir, { recursive: true, force: true });
  }
});

const FSTAB_GENERATOR = ["/usr/lib/systemd/system-generators/systemd-fstab-generator", "/lib/systemd/system-generators/systemd-fstab-generator"].find((g) => existsSync(g));

test("an fstab line naming /dev/VG/LV waits for the device unit named after udev's link, after ulvm-activate.service, without an ordering cycle", { skip: FSTAB_GENERATOR && which("systemd-escape") && which("systemd-analyze") ? undefined : "systemd's fstab generator not installed (apt-get install systemd)" }, () => {
  const generator = FSTAB_GENERATOR!;
  const dir = mkdtempSync(join(scratchBase(), "ulvm-fstab-"));
  try {
    const fstab = join(dir, "fstab");
    // The README's line, with the x-systemd.requires= it suggests.
    writeFileSync(fstab, "/dev/my-vg/data-1  /srv/data  ext4  defaults,x-systemd.requires=ulvm-activate.service  0 2\n");
    const out = join(dir, "out");
    mkdirSync(out);
    const g = spawnSync(generator, [out, out, out], { encoding: "utf8", env: { ...process.env, SYSTEMD_FSTAB: fstab, SYSTEMD_PROC_CMDLINE: "" } });
    assert.equal(g.status, 0, g.stderr);
    const unit = readFileSync(join(out, "srv-data.mount"), "utf8");
    assert.match(unit, /^What=\/dev\/my-vg\/data-1$/m);
    assert.match(unit, /^Requires=ulvm-activate\.service$/m);
    assert.match(unit, /^After=ulvm-activate\.service$/m);
    // systemd binds a mount to the device unit of What=; the name udev's link gives:
    const device = execFileSync("systemd-escape", ["--path", "--suffix=device", "/dev/my-vg/data-1"], { encoding: "utf8" }).trim();
    assert.equal(device, "dev-my\\x2dvg-data\\x2d1.device");
    assert.match(unit, /systemd-fsck@dev-my\\x2dvg-data\\x2d1\.service/);

    // The mount, the daemon and the activation start in one transaction, in
    // order (systemd-analyze verify refuses an ordering cycle: checked with
    // the activation ordered after the mount instead of before).
    const verify = (edit: (t: string) => string): { code: number; stderr: string } => {
      const units = ["ulvmd.service", "ulvm-activate.service"];
      for (const u of units) writeFileSync(join(dir, u), edit(readFileSync(join(REPO_ROOT, "systemd", u), "utf8").replaceAll("/usr/local/bin/ulvm", ULVM_BIN)));
      writeFileSync(join(dir, "srv-data.mount"), unit);
      const v = spawnSync("systemd-analyze", ["verify", join(dir, "srv-data.mount"), ...units.map((u) => join(dir, u))], { encoding: "utf8" });
      return { code: v.status ?? 128, stderr: v.stderr ?? "" };
    };
    const ok = verify((t) => t);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr.trim(), "");
    const cyclic = verify((t) => t.replace(/^Before=local-fs-pre\.target$/m, "After=srv-data.mount"));
    assert.notEqual(cyclic.code, 0);
    assert.match(cyclic.stderr, /ordering cycle/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
