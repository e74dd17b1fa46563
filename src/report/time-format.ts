/**
 * strftime("%Y-%m-%d %T %z") in local time: lvm2's lv_time format
 * (report/time_format default) and lvdisplay's "LV Creation host, time".
 * Empty for a zero or missing timestamp, as lvm2 prints.
 */
export function formatLvTime(seconds: number | undefined): string {
  if (!seconds) return "";
  const d = new Date(seconds * 1000);
  const p2 = (n: number): string => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const a = Math.abs(off);
  return (
    `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`
  );
}
