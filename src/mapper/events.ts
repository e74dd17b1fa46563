/**
 * Events raised by targets. Mechanism reports, policy decides: the daemon
 * receives these through TargetEnv.onEvent and chooses what to do (record a
 * failed leg in the VG metadata, start a repair, tell the user).
 *
 * For "leg-failed" on a mirror loaded with `handle_errors`, the promise the
 * handler returns is the policy's acknowledgement: writes that did not reach
 * the failed leg are acknowledged to the client only after it resolves (see
 * targets/mirror/mirror-target.ts for the crash-safety argument).
 * While that promise is pending, suspend()/remove() of the same device
 * wait for those writes, so the handler must resolve before it reloads the
 * device (record the failure, resolve, then repair).
 */
import type { ScrubPlace } from "./targets/raid1/raid1-scrub.js";

export type LegOp = "read" | "write" | "flush" | "resync";

export type MapperEvent =
  | {
      readonly kind: "leg-failed";
      /** Mapped device name (e.g. "vg-lv"). */
      readonly device: string;
      /** Leg index in the table line. */
      readonly leg: number;
      /** Device name of the leg as written in the table line. */
      readonly legDevice: string;
      readonly op: LegOp;
      readonly errno: string;
    }
  | { readonly kind: "log-failed"; readonly device: string; readonly logDevice: string; readonly errno: string }
  | { readonly kind: "in-sync"; readonly device: string }
  /**
   * raid1: a slot's rmeta holds something that is not a valid dm-raid
   * superblock and bitmap (bad magic, unknown features, a bitmap that does not
   * fit...). Its leg is not used and its rmeta not written; the device is not
   * failed (it answered): what to do is for a repair command to decide.
   */
  | { readonly kind: "rmeta-invalid"; readonly device: string; readonly slot: number; readonly metaDevice: string; readonly reason: string }
  /**
   * An integrity layer (a raid1 image's) refused its metadata at load: a
   * corrupt superblock, a tag area too small for the data, an unknown hash.
   * The layer serves nothing and writes nothing; the raid1 above treats its
   * image as failed until a repair re-initialises it.
   */
  | { readonly kind: "integrity-invalid"; readonly device: string; readonly metaDevice: string; readonly reason: string }
  | {
      /** A raid1 check/repair ended (completed or aborted): what it found and where (array sectors). */
      readonly kind: "scrub-done";
      readonly device: string;
      readonly action: "check" | "repair";
      readonly aborted: boolean;
      readonly mismatchSectors: number;
      readonly rewrittenSectors: number;
      readonly places: readonly ScrubPlace[];
      readonly placesOmitted: number;
      /** Data device of each slot, as in the table line. */
      readonly legDevices: readonly string[];
    }
  /**
   * raid1 over integrity layers: a read found blocks whose checksum failed
   * on leg `leg`. healed: they were served from another leg and rewritten
   * on this one; else no leg had a good copy and the client got EIO.
   * `runs` are the bad blocks, adjacent ones merged, in array sectors.
   */
  | {
      readonly kind: "integrity-mismatch";
      readonly device: string;
      readonly leg: number;
      readonly legDevice: string;
      readonly healed: boolean;
      readonly runs: readonly { readonly sector: number; readonly sectors: number }[];
    }
  | { readonly kind: "stripe-error"; readonly device: string; readonly stripe: number; readonly stripeDevice: string; readonly errno: string };

export type MapperEventHandler = (event: MapperEvent) => void | Promise<void>;
