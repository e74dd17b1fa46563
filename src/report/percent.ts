import { cFixed } from "../base/units.js";

/**
 * lvm2's dm_percent_t (device_mapper/all.h): an int where 1000000 is 1%, with
 * -1 for "invalid" (shown as an empty field). The arithmetic below copies
 * libdm-report.c, including its float rounding, so printed values agree.
 */
export const PERCENT_0 = 0;
export const PERCENT_1 = 1_000_000;
export const PERCENT_100 = 100 * PERCENT_1;
export const PERCENT_INVALID = -1;

/** dm_make_percent: never 0% or 100% unless exactly so. */
export function makePercent(numerator: number, denominator: number): number {
  if (!denominator) return PERCENT_100;
  if (!numerator) return PERCENT_0;
  if (numerator === denominator) return PERCENT_100;
  const p = Math.trunc(PERCENT_100 * (numerator / denominator));
  if (p === PERCENT_100) return PERCENT_100 - 1;
  if (p === PERCENT_0) return PERCENT_0 + 1;
  return p;
}

const f32 = Math.fround;

/** dm_percent_to_round_float(percent, 2): the float printf sees. */
export function percentToRoundFloat(percent: number): number {
  let f = f32(f32(percent) / f32(PERCENT_1)) + 0;
  const power = f32(0.01);
  const r = f32(PERCENT_1 * power);
  if (f32(percent) < r && percent > PERCENT_0) f = power;
  else if (f32(percent) > f32(PERCENT_100 - r) && percent < PERCENT_100) f = f32(f32(PERCENT_100 - r) / f32(PERCENT_1));
  return f;
}

/** dm_report_field_percent's text: "%.2f", or "" when invalid. */
export function percentText(percent: number): string {
  if (percent === PERCENT_INVALID) return "";
  return cFixed(percentToRoundFloat(percent), 2);
}
