#!/usr/bin/env node
// Compiles a Solidity standard-JSON input with solc-js (the npm package `solc`).
// stdin: the standard-JSON input, with the project's own sources.
// stdout: {"solcVersion", "solcLongVersion", "input", "output"}, where `input` also holds
//         every imported file (OpenZeppelin from node_modules), so that the pair is a complete
//         Hardhat-style build-info that analyzers can read without a native compiler.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const solc = require(path.join(root, "node_modules", "solc"));

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const imported = {};

function findImports(importPath) {
  const candidates = [path.join(root, "node_modules", importPath), path.join(root, importPath)];
  for (const file of candidates) {
    if (file.startsWith(root) && fs.existsSync(file)) {
      const contents = fs.readFileSync(file, "utf8");
      imported[importPath] = { content: contents };
      return { contents };
    }
  }
  return { error: `File not found: ${importPath} (looked in node_modules/ and the project)` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const fullInput = { ...input, sources: { ...input.sources, ...imported } };
const longVersion = solc.version();
process.stdout.write(
  JSON.stringify({
    solcVersion: longVersion.split("+")[0],
    solcLongVersion: longVersion.replace(".Emscripten.clang", ""),
    input: fullInput,
    output,
  })
);
