// esbuild shim: import.meta.url for the CommonJS bundle (the bundle file's own URL).
export const importMetaUrl = require("node:url").pathToFileURL(__filename).href;
