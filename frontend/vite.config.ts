/// <reference types="vitest/config" />
// The portal's build: static files in dist/ that Django serves with whitenoise (no CDN, no server of
// its own). Each emitted asset also gets a .gz and .br beside it, which whitenoise serves to browsers
// that accept them; the build prints the gzip size of the JS a first load fetches.
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

function precompress(): Plugin {
  let outDir = "dist";
  return {
    name: "healthhash-precompress",
    apply: "build",
    configResolved(config) {
      outDir = config.build.outDir;
    },
    writeBundle(_options, bundle) {
      const gzipped = new Map<string, number>();
      for (const [fileName, item] of Object.entries(bundle)) {
        if (!/\.(js|css|html|svg|json)$/.test(fileName)) continue;
        const source = item.type === "chunk" ? item.code : item.source;
        const bytes = Buffer.from(source);
        const gz = gzipSync(bytes, { level: 9 });
        gzipped.set(fileName, gz.length);
        writeFileSync(join(outDir, `${fileName}.gz`), gz);
        // Quality 9: nearly the size of 11 at a fraction of the time.
        const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } });
        writeFileSync(join(outDir, `${fileName}.br`), br);
      }
      // First load: the entry chunk and every chunk it imports statically (lazy chunks come later).
      const seen = new Set<string>();
      const visit = (fileName: string): void => {
        const item = bundle[fileName];
        if (seen.has(fileName) || item?.type !== "chunk") return;
        seen.add(fileName);
        item.imports.forEach(visit);
      };
      Object.values(bundle).forEach((item) => item.type === "chunk" && item.isEntry && visit(item.fileName));
      const total = [...seen].reduce((sum, name) => sum + (gzipped.get(name) ?? 0), 0);
      this.info(`first-load JS, gzipped: ${(total / 1024).toFixed(1)} KB`);
    },
  };
}

export default defineConfig({
  plugins: [react(), precompress()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
  },
  server: {
    // `npm run dev` against a local Django (make demo serves the API on 127.0.0.1:8000).
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "happy-dom",
    environmentOptions: { happyDOM: { url: "http://portal.test/" } },
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});
