#!/usr/bin/env node
// Compiles a Solidity Standard JSON input read on stdin with the pinned npm `solc` (solcjs) and prints the
// Standard JSON output on stdout. Imports of `@openzeppelin/...` (and any other package) resolve to files under
// this directory's node_modules. `--version` prints the compiler version instead.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

if (process.argv.includes("--version")) {
  process.stdout.write(solc.version() + "\n");
  process.exit(0);
}

const nodeModules = path.join(__dirname, "node_modules");

function findImports(importPath) {
  // Only package imports are resolved here; project sources are all passed in the input already.
  const candidate = path.resolve(nodeModules, importPath);
  if (!candidate.startsWith(nodeModules + path.sep)) {
    return { error: `import outside node_modules: ${importPath}` };
  }
  try {
    return { contents: fs.readFileSync(candidate, "utf8") };
  } catch (err) {
    return { error: `not found: ${importPath}` };
  }
}

const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
