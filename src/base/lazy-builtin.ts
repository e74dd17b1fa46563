import { createRequire } from "node:module";

/**
 * A Node builtin loaded on its first use instead of at start-up. Most ulvm
 * commands are short-lived processes, and a report never creates an id or
 * hashes anything: loading node:crypto up front costs ~3 ms of every `ulvm lvs`
 * on these machines. (The CLI bundle keeps `import()` out: see build.sh.)
 */
const nodeRequire = createRequire(import.meta.url);

export function lazyBuiltin<T>(id: `node:${string}`): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= nodeRequire(id) as T);
}
