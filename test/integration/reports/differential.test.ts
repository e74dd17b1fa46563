import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES_DIR } from "../../helpers/fixtures.js";
import { Lab, lvmUnavailable, type RunResult } from "../../helpers/lab.js";

/**
 * ulvm's report and display commands against the real lvm2 on the same loop
 * devices: VGs, LVs and a legacy mirror made by lvm2 itself (activation
 * disabled), then every command and option compared byte for byte.
 *
 * lvm2 runs without device-mapper here, so it prints "X" for the two state
 * characters of lv_attr and leaves out lvdisplay's "LV Status" line; ulvm
 * reports as a system with device-mapper does ("-" and "NOT available").
 * Those two differences are normalised; nothing else is.
 */
const skip = lvmUnavailable();
let lab: Lab;
let loops: string[] = [];

function normLvm(r: RunResult): RunResult {
  return {
    code: r.code,
    stdout: r.stdout.replace(/(?<![\w-])([-a-zA-Z]{4})XX([-a-zA-Z]{4})(?![\w-])/g, "$1--$2"),
    stderr: r.stderr
      .split("\n")
      .filter((l) => !l.includes("Activation disabled"))
      .join("\n"),
  };
}

function normUlvm(r: RunResult): RunResult {
  return { ...r, stdout: r.stdout.replace(/^ {2}LV Status {14}NOT available.*\n/gm, "") };
}

function same(...args: string[]): void {
  const l = normLvm(lab.lvm(...args));
  const u = normUlvm(lab.ulvm(...args));
  assert.equal(u.stdout, l.stdout, `stdout of ${args.join(" ")}`);
  assert.equal(u.stderr, l.stderr, `stderr of ${args.join(" ")}`);
  assert.equal(u.code, l.code, `exit status of ${args.join(" ")}\n${u.stderr}`);
}

/** lvm2's lvm.conf for the lab, restricted to `devs` (the Lab writes one for all loops). */
function lvmFilter(devs: readonly string[]): void {
  const acc = devs.map((d) => `"a|^${d}$|", `).join("");
  writeFileSync(
    join(lab.lvmDir, "lvm.conf"),
    `devices {\n\tobtain_device_list_from_udev = 0\n\tuse_devicesfile = 0\n\thints = "none"\n\tfilter = [ ${acc}"r|.*|" ]\n}\n` +
      `activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tmonitoring = 0\n}\n` +
      `global {\n\tactivation = 0\n\tuse_lvmpolld = 0\n}\n` +
      `backup {\n\tbackup = 0\n\tarchive = 0\n}\n`,
  );
  lab.writeConfig(`devices {\n\tscan = [ ${devs.map((d) => `"${d}"`).join(", ")} ]\n}\n`);
}

before(() => {
  if (skip) return;
  lab = new Lab("ulvm-reports-");
  // lvm2 prints /dev/VG/LV paths; these commands only read, so ulvm may use the same dev dir.
  lab.env.ULVM_DEV_DIR = "/dev";
  for (let i = 1; i <= 8; i++) lab.addDisk(`d${i}`, 16);
  const m = lab.attachLoops();
  loops = [...m.values()];
  const [a, b, c, d, orphan, m1, m2, m3] = loops as [string, string, string, string, string, string, string, string];
  lab.lvmOk("pvcreate", "-q", a, b, c, d, orphan);
  lab.lvmOk("vgcreate", "-q", "-s", "1m", "vg1", a, b, c);
  lab.lvmOk("vgcreate", "-q", "vg2", d);
  lab.lvmOk("lvcreate", "-q", "-an", "-Zn", "-L", "4m", "-n", "lin", "vg1");
  lab.lvmOk("lvcreate", "-q", "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "4m", "-n", "str", "vg1");
  lab.lvmOk("lvcreate", "-q", "-an", "-Zn", "-L", "3m", "-n", "frag", "vg1", c);
  lab.lvmOk("lvextend", "-q", "-L", "+2m", "vg1/frag", a);
  lab.lvmOk("lvcreate", "-q", "-an", "-Zn", "-L", "8m", "-n", "big-one", "vg2");
  lab.lvmOk("lvchange", "-q", "--addtag", "t1", "--addtag", "t0", "vg1/lin");
  // A legacy mirror (lvcreate refuses without device-mapper): restore the fixture's hand-written VG.
  lab.lvmOk("pvcreate", "-q", "--uuid", "fxmirr-pv01-0000-0000-0000-0000-000001", "--norestorefile", m1);
  lab.lvmOk("pvcreate", "-q", "--uuid", "fxmirr-pv02-0000-0000-0000-0000-000002", "--norestorefile", m2);
  lab.lvmOk("pvcreate", "-q", "--uuid", "fxmirr-pv03-0000-0000-0000-0000-000003", "--norestorefile", m3);
  lab.lvmOk("vgcfgrestore", "-q", "-f", join(FIXTURES_DIR, "b-mirror", "restore-input.vg"), "fxmirror");
});

after(() => lab?.cleanup());

const REPORTS: string[][] = [
  ["pvs"], ["vgs"], ["lvs"], ["lvs", "-a", "-o", "+devices"], ["pvs", "-a"], ["pvs", "--segments"], ["lvs", "--segments"],
  ["pvs", "-v"], ["vgs", "-v"], ["lvs", "-v"],
  ["pvs", "-o", "pv_all"], ["vgs", "-o", "vg_all"], ["lvs", "-a", "--segments", "-o", "seg_all"], ["pvs", "--segments", "-o", "pvseg_all,lv_name,seg_all"],
  ["lvs", "-a", "-o", "lv_name,lv_uuid,lv_full_name,lv_path,lv_dm_path,lv_parent,lv_layout,lv_role,lv_size,seg_count,lv_tags,lv_time,lv_host,lv_attr,mirror_log,lv_modules,lv_image_synced,lv_initial_image_sync,lv_health_status,lv_permissions,lv_kernel_major,copy_percent"],
  ["lvs", "-a", "--segments", "-o", "+seg_start_pe,seg_pe_ranges,seg_le_ranges,devices,stripe_size,region_size,lv_uuid", "--units", "s"],
  ["vgs", "--units", "b"], ["vgs", "--units", "k"], ["vgs", "--units", "4m"], ["vgs", "--units", "H"], ["vgs", "--units", "R"], ["lvs", "--nosuffix", "--units", "m"],
  ["lvs", "--noheadings"], ["lvs", "--separator", ":"], ["lvs", "--separator", ":", "--aligned"], ["lvs", "--nameprefixes"], ["lvs", "--nameprefixes", "--unquoted"],
  ["lvs", "--rows"], ["lvs", "--unbuffered"], ["lvs", "-O", "-lv_size"], ["lvs", "-O", "lv_size,-lv_name"], ["lvs", "-o", "+lv_size", "-o", "-vg_name"],
  ["lvs", "-o", "name,size,attr"], ["vgs", "-o", "name,size,attr,uuid"], ["pvs", "-o", "name,size,attr,uuid"],
  ["lvs", "-S", "lv_size>3"], ["lvs", "-a", "-S", "lv_name=~^lv_mirror"], ["lvs", "-S", "lv_tags=t1"], ["lvs", "-S", "lv_size>=4m && vg_name=vg1"],
  ["vgs", "-S", "(vg_name=vg1 || vg_name=zz) && !(pv_count=2)"], ["vgs", "-S", "vg_name<1"], ["vgs", "-S", "vg_free<1g"],
  ["lvs", "vg1"], ["lvs", "vg1/lin", "vg2"], ["lvs", "nosuch"], ["lvs", "vg1/nosuch"], ["lvs", "-o", "foo"], ["lvs", "--units", "x"], ["lvs", "-O", "nosuch"],
  ["lvs", "-S", "foo=1"], ["pvs", "/dev/nosuch"], ["lvs", "--reportformat", "json", "-a"], ["vgs", "--reportformat", "json"],
  ["pvs", "--reportformat", "json", "-o", "+pv_tags"], ["lvs", "--reportformat", "xml"], ["lvs", "--reportformat", "json", "-o", "foo"],
  ["lvs", "--reportformat", "json", "-o", "+pv_name"], ["lvs", "--reportformat", "json", "nosuch"], ["pvs", "--reportformat", "json", "--segments"], ["lvs", "-o", "help"], ["vgs", "-S", "help"],
  ["vgs", "-o", "+vg_mda_count,vg_mda_used_count,vg_mda_size,vg_mda_free,vg_extent_size,vg_extent_count,vg_free_count,max_lv,max_pv,vg_seqno,vg_permissions"],
  ["pvs", "-o", "+pv_used,pe_start,dev_size,pv_pe_count,pv_pe_alloc_count,pv_mda_count,pv_mda_free,pv_mda_size,pv_ext_vsn,pv_in_use,pv_allocatable"],
  // Columns of another object change what is walked: VGs per LV or PV, PVs per PV segment, LVs per segment.
  ["vgs", "-o", "+lv_name"], ["vgs", "-o", "+pv_name"], ["pvs", "-o", "+lv_name,seg_size"], ["lvs", "-o", "+pv_name"], ["vgs", "-o", "+devices"],
  ["vgs", "@t1"], ["lvs", "-o", "lv_name", "@t0", "vg2"], ["lvs", "/dev/vg1/lin"], ["vgs", "/dev/vg1"], ["lvs", "fxmirror/lv_mirror_mimage_0"],
  ["lvs", "-a", "-O", "copy_percent,lv_name"], ["pvs", "-O", "-pv_free"], ["lvs", "-o", ""], ["pvs", "-o", "+"], ["lvs", "--segments", "-o", "help"],
];

const DISPLAYS: string[][] = [
  ["pvdisplay"], ["pvdisplay", "-m"], ["pvdisplay", "-c"], ["pvdisplay", "-s"], ["vgdisplay"], ["vgdisplay", "-c"], ["vgdisplay", "-s"],
  ["vgdisplay", "-v"], ["vgdisplay", "vg2"], ["vgdisplay", "--units", "b"], ["lvdisplay"], ["lvdisplay", "-m"], ["lvdisplay", "-c"],
  ["lvdisplay", "-a", "-m", "fxmirror"], ["lvdisplay", "-a", "-c", "fxmirror"], ["lvdisplay", "vg1/str"], ["lvdisplay", "nosuch"],
  ["pvdisplay", "--units", "s"], ["pvdisplay", "-C"], ["vgdisplay", "-C"], ["lvdisplay", "-C"],
  ["lvscan"], ["lvscan", "-a"], ["pvscan"], ["pvscan", "-s"], ["pvscan", "-u"], ["pvscan", "-n"], ["pvscan", "-e"], ["vgscan"],
  ["lvscan", "a", "b"], ["vgscan", "vg1"], ["lvdisplay", "@t1"], ["lvdisplay", "fxmirror/lv_mirror_mimage_0"], ["vgdisplay", "-A"],
];

test("reports (pvs, vgs, lvs) match lvm2 byte for byte", { skip }, () => {
  for (const args of REPORTS) same(...args);
});

test("display and scan commands match lvm2 byte for byte", { skip }, () => {
  for (const args of DISPLAYS) same(...args);
  same("pvdisplay", loops[0]!, loops[4]!);
  same("pvs", loops[3]!, loops[0]!);
  same("pvscan", loops[0]!);
});

test("the orphan PV is listed with an empty VG and attr ---", { skip }, () => {
  const out = lab.ulvm("pvs", "--noheadings", "-o", "pv_name,vg_name,pv_attr", loops[4]!).stdout;
  assert.match(out, new RegExp(`^  ${loops[4]}\\s+---\\s*$`, "m"));
});

test("with a mirror leg's PV missing: [unknown], partial attrs, warnings, as lvm2", { skip }, () => {
  const visible = loops.filter((_, i) => i !== 6);
  lvmFilter(visible);
  try {
    for (const args of [
      ["pvs"], ["vgs"], ["lvs", "-a", "-o", "+devices,lv_health_status"], ["pvs", "-a", "-o", "+vg_all"], ["pvdisplay"], ["pvdisplay", "-m"],
      ["pvdisplay", "-c"], ["vgdisplay", "fxmirror"], ["vgdisplay", "-c", "fxmirror"], ["lvdisplay", "-a", "-m", "fxmirror"], ["lvscan", "-a"],
      ["pvscan"], ["vgscan"], ["pvs", "--segments", "-o", "+lv_name,seg_pe_ranges"], ["lvs", "--reportformat", "json", "-a", "fxmirror"],
    ]) same(...args);
    const u = lab.ulvm("lvs", "-a", "-o", "lv_name,lv_attr", "fxmirror");
    assert.match(u.stdout, /\[lv_mirror_mimage_1\]\s+Iwi---m-p-/);
    assert.match(u.stdout, /lv_mirror\s+mwi---m-p-/);
    assert.match(u.stderr, /WARNING: Couldn't find device with uuid fxmirr-pv02-0000-0000-0000-0000-000002\./);
  } finally {
    lvmFilter(loops);
  }
});

test("an exported VG: listed by vgs and pvs, skipped by lvs, lvscan and lvdisplay", { skip }, () => {
  lab.lvmOk("vgexport", "-q", "vg2");
  try {
    for (const args of [
      ["vgs"], ["pvs"], ["lvs"], ["lvs", "vg2"], ["lvs", "vg2/big-one"], ["lvscan"], ["lvdisplay", "vg2"], ["vgdisplay", "vg2"],
      ["vgs", "-o", "+lv_name"], ["pvscan"], ["pvscan", "-e"], ["pvdisplay", loops[3]!], ["pvs", "-o", "+pv_exported,vg_exported,vg_attr"],
    ]) same(...args);
  } finally {
    lab.lvmOk("vgimport", "-q", "vg2");
  }
});

test("with no VGs and no PVs at all", { skip }, () => {
  lvmFilter([]);
  try {
    for (const args of [["pvs"], ["vgs"], ["lvs"], ["lvscan"], ["vgscan"], ["pvscan"], ["vgdisplay"], ["lvdisplay"], ["pvdisplay"], ["lvs", "--reportformat", "json"]]) same(...args);
  } finally {
    lvmFilter(loops);
  }
});

test("attributes set with lvm2's pvchange, lvchange and vgchange read back as lvm2 reads them", { skip }, () => {
  const [, b, , d] = loops as [string, string, string, string];
  lab.lvmOk("pvchange", "-q", "-x", "n", b);
  lab.lvmOk("lvchange", "-q", "-p", "r", "vg1/str");
  lab.lvmOk("lvchange", "-q", "--alloc", "contiguous", "vg1/frag");
  lab.lvmOk("lvchange", "-q", "-ky", "vg1/lin");
  lab.lvmOk("lvchange", "-q", "-r", "256", "vg1/frag");
  lab.lvmOk("vgchange", "-q", "--alloc", "anywhere", "vg2");
  lab.lvmOk("vgchange", "-q", "-x", "n", "vg2");
  lab.lvmOk("vgchange", "-q", "--addtag", "vgt", "vg2");
  lab.lvmOk("pvchange", "-q", "--addtag", "pvt", d);
  for (const args of [
    ["pvs"], ["pvdisplay", b], ["pvdisplay", "-c", b], ["pvscan"], ["lvdisplay"], ["lvdisplay", "-c"], ["lvscan"], ["vgdisplay", "vg2"], ["vgdisplay", "-c", "vg2"],
    ["lvs", "-o", "+lv_read_ahead,lv_major,lv_minor,lv_allocation_policy,lv_permissions,lv_skip_activation,lv_fixed_minor"],
    ["vgs", "-o", "+vg_tags,vg_allocation_policy,vg_extendable"], ["pvs", "-o", "+pv_tags"], ["pvs", "-S", "pv_tags=pvt"], ["vgs", "@vgt"], ["pvs", "@pvt"], ["lvs", "@vgt"],
  ]) same(...args);
});
