import type { MapperEvent } from "../../events.js";
import type { LegErrorKind, MirrorLeg } from "./mirror-leg.js";
import { IoError } from "../../../errors/errors.js";

/**
 * How a failure gets recorded before writes that missed the leg are
 * acknowledged: the mirror with handle_errors passes the event handler (the
 * policy records it in the VG metadata); raid1 passes its superblock
 * rewrite (md records it in every rmeta itself). The promise is the record.
 */
export type FailureRecorder = (leg: MirrorLeg, event: MapperEvent) => Promise<void>;

/**
 * Leg failures of one mirror: marking, reporting, and (with a recorder) the
 * acknowledgement that gates write completions.
 *
 * Mechanism only: a failed leg is excluded from all I/O at once and a
 * "leg-failed" event is raised once per leg. With a recorder (mirror:
 * handle_errors, raid1: always), its promise is kept as the leg's
 * FailureAck; `awaitRecorded()` is what a write awaits before it is
 * acknowledged. A rejected ack is dropped, so the next write that needs it
 * records (and raises the event) again.
 */
export class LegFailures {
  private failed = 0;
  private readonly events = new Map<MirrorLeg, MapperEvent>();

  constructor(
    private readonly legs: readonly MirrorLeg[],
    private readonly deviceName: string,
    private readonly record: FailureRecorder | undefined,
    private readonly emit: (e: MapperEvent) => Promise<void>,
  ) {}

  get count(): number {
    return this.failed;
  }

  /** Whether writes that missed a failed leg wait for its record. */
  get gated(): boolean {
    return this.record !== undefined;
  }

  /**
   * A leg that is failed from the start (raid1's `- -` slot): excluded from
   * all I/O, already recorded (the superblocks carry its bit), no event.
   */
  markAbsent(leg: MirrorLeg): void {
    if (leg.failed) return;
    leg.failed = true;
    this.failed++;
    leg.ack = { settled: "ok", recorded: Promise.resolve() };
  }

  /** Mark the leg failed (first error) or add an error kind (later ones). Returns true on the first failure. */
  fail(leg: MirrorLeg, kind: LegErrorKind, err: IoError): boolean {
    leg.errors.add(kind);
    if (leg.failed) return false;
    leg.failed = true;
    this.failed++;
    const event: MapperEvent = { kind: "leg-failed", device: this.deviceName, leg: leg.index, legDevice: leg.name, op: kind, errno: err.errno };
    this.events.set(leg, event);
    if (this.record !== undefined) this.raise(leg, event);
    else void this.emit(event).catch(() => undefined);
    return true;
  }

  private raise(leg: MirrorLeg, event: MapperEvent): void {
    const ack: NonNullable<MirrorLeg["ack"]> = {
      settled: "pending",
      recorded: this.record!(leg, event).then(
        () => {
          ack.settled = "ok";
        },
        (e: unknown) => {
          ack.settled = "rejected";
          if (leg.ack === ack) leg.ack = undefined;
          throw e;
        },
      ),
    };
    ack.recorded.catch(() => undefined);
    leg.ack = ack;
  }

  private absentEvent(leg: MirrorLeg): MapperEvent {
    return { kind: "leg-failed", device: this.deviceName, leg: leg.index, legDevice: leg.name, op: "write", errno: "ENODEV" };
  }

  /** Every failed leg's failure has been confirmed by the policy (handle_errors). */
  allRecorded(): boolean {
    return this.failed === 0 || this.legs.every((l) => !l.failed || l.ack?.settled === "ok");
  }

  /** Resolves when every failure is recorded; EIO if the policy refused one. */
  async awaitRecorded(): Promise<void> {
    for (const leg of this.legs) {
      if (!leg.failed) continue;
      if (leg.ack === undefined) this.raise(leg, this.events.get(leg) ?? this.absentEvent(leg));
      const ack = leg.ack!;
      if (ack.settled === "ok") continue;
      try {
        await ack.recorded;
      } catch (e) {
        throw new IoError(
          `${this.deviceName}: failure of mirror leg ${leg.index} (${leg.name}) was not recorded by the policy handler`,
          "EIO",
          undefined,
          e,
        );
      }
    }
  }
}
