import { createInterface } from "node:readline";
import type { Output } from "../commands/output.js";

/**
 * lvm2's yes/no prompt: "question [y/n]: " on stdout, an answer from stdin.
 * End of input counts as "no" (lvm2 treats EOF the same way).
 */
export function askYesNo(question: string, out: Output): Promise<boolean> {
  if (out && "flush" in out && typeof (out as { flush?: () => void }).flush === "function") (out as { flush: () => void }).flush();
  process.stdout.write(question + " [y/n]: ");
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, terminal: false });
    let done = false;
    const finish = (v: boolean): void => {
      if (done) return;
      done = true;
      rl.close();
      process.stdin.pause();
      resolve(v);
    };
    rl.on("line", (line) => {
      const a = line.trim().toLowerCase();
      if (a === "y" || a === "yes") finish(true);
      else if (a === "n" || a === "no") finish(false);
      else process.stdout.write(question + " [y/n]: ");
    });
    rl.on("close", () => {
      if (!done) process.stdout.write("\n");
      finish(false);
    });
  });
}
