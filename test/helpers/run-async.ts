import { spawn } from "node:child_process";
import { Lab, ULVM_BIN, type RunResult } from "./lab.js";

/**
 * Run the built ulvm without blocking the test (a long pvmove while clients
 * run): resolves when it exits; `onStdout` sees all its output so far at each chunk.
 */
export function ulvmAsync(lab: Lab, args: string[], onStdout: (all: string) => void = () => undefined): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ULVM_BIN, ...args], { env: lab.env, cwd: lab.dir });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      onStdout(stdout);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    child.on("close", (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}
